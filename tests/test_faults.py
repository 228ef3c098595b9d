"""Fault injection: ``svp-hf select``, ``coreset`` and ``train`` killed (SIGKILL) at seeded random moments, in a loop.

After every kill: no partial output (the output folder is absent, or complete and equal to an uninterrupted run's when
the kill came after it was swapped into place). After the loop: a rerun of the same command succeeds, its result
equals the uninterrupted run's (the same rows and scores; for ``train``, the same weights and eval metrics), and no
temporary folder or lock is left beside the output or in the feature cache. ``active-learn`` has its own loop, with
real processes, in test_active.py (``test_sigkill_mid_run_resumes_to_the_same_result``).

A moment is drawn either uniformly over an uninterrupted run's duration, or just after a write starts (the output's
temporary folder appearing; for ``train`` also a Trainer checkpoint): windows that a uniform draw rarely hits. The
default run kills each command a few times, the ``slow`` twins many more.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

# Starting python and importing torch, transformers and datasets costs 5-10 s of CPU on a 2-core machine, more than
# the commands below; a kill in that phase only shows that nothing was written yet. So each command runs in a child
# forked from a server that imported everything once: the child runs `svp_hf.cli.main(argv)` and exits as the command
# would (atexit handlers run, the exit code kept), and SIGKILL hits the process doing the work. One JSON line each way:
# {"argv": [...], "env": {...}, "log": PATH} -> {"pid": N}, then {"status": ...} when the child ends.
FORK_SERVER = r"""
import atexit, json, os, sys, traceback
import datasets, sklearn, torch, transformers
from transformers import Trainer
import svp_hf.cli, svp_hf.proxies, svp_hf.selection, svp_hf.training

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.update(job["env"])
        sys.argv = ["svp-hf", *job["argv"]]
        try:
            code = svp_hf.cli.main(job["argv"])
        except SystemExit as exit:
            code = exit.code
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
        os._exit(code if isinstance(code, int) else 1)
    print(json.dumps({"pid": pid}), flush=True)
    print(json.dumps({"status": os.waitpid(pid, 0)[1]}), flush=True)
"""


class ForkServer:
    def __init__(self, folder: Path):
        (folder / "fork_server.py").write_text(FORK_SERVER)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}  # as on a busy CI machine
        self.proc = subprocess.Popen(
            [sys.executable, str(folder / "fork_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.buffer = b""

    def line(self, timeout: float | None = None) -> dict | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            if not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the fork server died (exit code {self.proc.wait()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def start(self, argv: list[str], cache: Path, log: Path) -> Child:
        job = {"argv": argv, "env": {"SVP_HF_CACHE": str(cache)}, "log": str(log)}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        return Child(self, self.line()["pid"], log)

    def run(self, argv: list[str], cache: Path, log: Path) -> tuple[int, str, float]:
        """Run a command to its end: ``(exit code, output, seconds)``."""
        t0 = time.monotonic()
        child = self.start(argv, cache, log)
        return child.wait(), child.output(), time.monotonic() - t0

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Child:
    def __init__(self, server: ForkServer, pid: int, log: Path):
        self.server, self.pid, self.log, self.code = server, pid, log, None

    def poll(self) -> int | None:
        if self.code is None:
            reply = self.server.line(timeout=0)
            if reply is not None:
                self.code = os.waitstatus_to_exitcode(reply["status"])
        return self.code

    def wait(self) -> int:
        if self.code is None:
            self.code = os.waitstatus_to_exitcode(self.server.line()["status"])
        return self.code

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory):
    server = ForkServer(tmp_path_factory.mktemp("fork_server"))
    yield server
    server.close()


def _kill_at(server: ForkServer, argv, cache: Path, log: Path, when, rng: random.Random):
    """Start a command and SIGKILL it at the moment ``when`` picks (``("after", seconds)``, or ``("on", predicate)``:
    a few milliseconds after ``predicate()`` first holds). Returns ``("killed", -9, output)``, or ``("finished",
    exit code, output)`` when it ended before the moment came."""
    child = server.start(argv, cache, log)
    kind, arg = when
    deadline = time.monotonic() + (arg if kind == "after" else 120)
    while child.poll() is None and time.monotonic() < deadline and not (kind == "on" and arg()):
        time.sleep(0.001)
    if kind == "on":
        time.sleep(rng.uniform(0, 0.03))
    outcome = "finished" if child.poll() is not None else "killed"
    if outcome == "killed":
        os.kill(child.pid, signal.SIGKILL)
    return outcome, child.wait(), child.output()


def _appears(folder: Path, pattern: str):
    """A predicate: a new entry matching ``pattern`` is in ``folder`` (ones already there, left by killed runs, do not
    count)."""

    def names():
        try:  # the run may rename the folder away between the check and the listing
            return {p.name for p in folder.glob(pattern)}
        except FileNotFoundError:
            return set()

    before = names()
    return lambda: bool(names() - before)


def _leftovers(out: Path, cache: Path) -> list[str]:
    """Temporary folders and locks of ``out``'s writers, and of the feature cache's."""
    found = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    if cache.exists():
        found += [str(p.relative_to(cache)) for p in cache.rglob("*") if ".tmp-" in p.name or p.name.endswith(".lock")]
    return found


def _kill_loop(server, argv, out, cache, moment, check_complete, rng, kills):
    """Kill the command ``kills`` times; after each, ``out`` is absent or complete (then removed, to go on killing).
    Returns each run's ``(outcome, exit code, output)``."""
    runs = []
    for i in range(kills):
        log = out.parent.parent / f"kill_{i}.log"
        runs.append(_kill_at(server, argv, cache, log, moment(), rng))
        if out.exists():  # the kill came after the swap (or the run finished): the result must be whole
            check_complete(out)
            shutil.rmtree(out)
    assert any(outcome == "killed" for outcome, _, _ in runs), runs  # at least one kill interrupted a run
    return runs


# -- select / coreset -------------------------------------------------------------------------------------------
def _selection(out: Path) -> dict:
    ds = datasets.load_from_disk(str(out))  # loads: the folder is complete
    config = json.loads((out / "selection_config.json").read_text())
    assert (out / "README.md").is_file() and (out / "svp_pool_scores.npy").is_file()
    return {"rows": ds["svp_pool_index"], "scores": ds["svp_score"], "config": config["config"]}


@pytest.mark.parametrize("kills", [pytest.param(3, id="few"), pytest.param(30, id="many", marks=pytest.mark.slow)])
@pytest.mark.parametrize("command", ["select", "coreset"])
def test_selection_killed_at_random_moments_reruns_to_the_same_result(
    fork_server, ag_news_path, tmp_path, command, kills
):
    common = ["--dataset", str(ag_news_path), "--split", "train[:2000]", "--proxy", "tfidf", "--seed", "0"]
    if command == "select":  # active-learning style: the proxy trains on the labeled rows, picks among the rest
        (tmp_path / "labeled.json").write_text(json.dumps(list(range(0, 2000, 10))))
        args = [
            *common,
            "--strategy",
            "margin",
            "--budget",
            "300",
            "--labeled-indices",
            str(tmp_path / "labeled.json"),
        ]
    else:
        args = [*common, "--strategy", "entropy", "--keep", "0.5"]

    def argv(out):
        return [command, *args, "--output-dir", str(out), "--quiet"]

    code, output, seconds = fork_server.run(
        argv(tmp_path / "ref" / "out"), tmp_path / "ref_cache", tmp_path / "ref.log"
    )
    assert code == 0, output
    expected = _selection(tmp_path / "ref" / "out")

    out, cache = tmp_path / "runs" / "out", tmp_path / "cache"
    out.parent.mkdir()
    rng = random.Random(f"{command}-14")

    def moment():
        if rng.random() < 0.5:
            return ("after", rng.uniform(0, seconds))
        return ("on", _appears(out.parent, f".{out.name}.tmp-*"))  # while the result is being written

    def complete(folder):
        assert _selection(folder) == expected

    runs = _kill_loop(fork_server, argv(out), out, cache, moment, complete, rng, kills)
    assert all(code == 0 for outcome, code, _ in runs if outcome == "finished"), runs  # none failed on a leftover
    code, output, _ = fork_server.run(argv(out), cache, tmp_path / "rerun.log")
    assert code == 0, output
    assert _selection(out) == expected
    assert _leftovers(out, cache) == []


# -- train ------------------------------------------------------------------------------------------------------
def _trained(out: Path) -> dict:
    """What a finished training folder must hold, readable; its weights and the metrics that do not depend on time."""
    from safetensors.numpy import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    for name in ("README.md", "config.json", "tokenizer.json", "training_args.json", "all_results.json"):
        assert (out / name).is_file(), name
    AutoModelForSequenceClassification.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)
    results = json.loads((out / "all_results.json").read_text())
    evaluation = json.loads((out / "eval_results.json").read_text())
    return {
        "eval": {k: v for k, v in evaluation.items() if "runtime" not in k and "per_second" not in k},
        "steps": results["train_global_step"],
        "weights": {k: v.tobytes() for k, v in load_file(str(out / "model.safetensors")).items()},
    }


@pytest.mark.parametrize("kills", [pytest.param(3, id="few"), pytest.param(20, id="many", marks=pytest.mark.slow)])
def test_train_killed_at_random_moments_resumes_to_the_same_model(fork_server, ag_news_path, tmp_path, kills):
    args = ["train", "--dataset", str(ag_news_path), "--split", "train[:48]", "--eval-split", "test[:32]",
            "--model", "bert-tiny", "--max-length", "32", "--num_train_epochs", "1",
            "--per_device_train_batch_size", "8", "--save_steps", "1", "--seed", "0", "--quiet"]  # fmt: skip

    def argv(out):
        return [*args, "--output-dir", str(out)]

    ref = tmp_path / "ref" / "model"
    code, output, seconds = fork_server.run(argv(ref), tmp_path / "ref_cache", tmp_path / "ref.log")
    assert code == 0, output[-3000:]
    expected = _trained(ref)
    assert expected["steps"] == 6

    out, cache = tmp_path / "runs" / "model", tmp_path / "cache"
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir()
    rng = random.Random("train-14")

    def moment():
        draw = rng.random()
        if draw < 0.4:
            return ("after", rng.uniform(0, seconds))
        if draw < 0.8:  # while the Trainer writes a checkpoint
            return ("on", _appears(partial, "checkpoint-*"))
        return ("on", _appears(out.parent, f".{out.name}.tmp-*"))  # while the final folder is written

    def complete(folder):
        assert _trained(folder) == expected

    runs = _kill_loop(fork_server, argv(out), out, cache, moment, complete, rng, kills)
    # a run that finds a checkpoint cut short by a kill (no trainer_state.json yet) resumes the last complete one
    assert all(code == 0 for outcome, code, _ in runs if outcome == "finished"), runs
    code, output, _ = fork_server.run(argv(out), cache, tmp_path / "rerun.log")
    assert code == 0, output[-3000:]
    assert _trained(out) == expected  # bit-for-bit the uninterrupted run's weights and metrics
    assert not partial.exists()  # the checkpoints go once the model is saved
    assert _leftovers(out, cache) == []


def test_train_resumes_the_last_complete_checkpoint_after_one_cut_short(ag_news_path, tmp_path, monkeypatch):
    """The moment the loop above hits only sometimes, made certain: a run stops while writing checkpoint-4 (weights
    written, ``trainer_state.json`` not yet: the Trainer writes it last). The rerun passes over that checkpoint,
    removes it, resumes from checkpoint-3 and ends with the uninterrupted run's weights."""
    from safetensors.numpy import load_file
    from transformers.trainer_callback import TrainerState

    from svp_hf.data import load_pool
    from svp_hf.training import train_target

    rows = load_pool(str(ag_news_path), "train[:48]")
    args = {"num_train_epochs": 1, "per_device_train_batch_size": 8, "seed": 0, "save_steps": 1}
    expected = train_target(rows, "bert-tiny", tmp_path / "ref", training_args=args, max_length=16)

    save = TrainerState.save_to_json

    def cut_short(self, path):
        if "checkpoint-4" in str(path):
            raise KeyboardInterrupt  # as if killed before the state was written
        save(self, path)

    out = tmp_path / "model"
    partial = out.with_name("model.partial")
    with monkeypatch.context() as patch:
        patch.setattr(TrainerState, "save_to_json", cut_short)
        with pytest.raises(KeyboardInterrupt):
            train_target(rows, "bert-tiny", out, training_args=args, max_length=16)
    assert sorted(p.name for p in partial.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    assert not (partial / "checkpoint-4" / "trainer_state.json").exists()

    metrics = train_target(rows, "bert-tiny", out, training_args=args, max_length=16)
    assert metrics["train_global_step"] == expected["train_global_step"] == 6
    weights, reference = (
        load_file(str(out / "model.safetensors")),
        load_file(str(tmp_path / "ref" / "model.safetensors")),
    )
    assert weights.keys() == reference.keys()
    assert all((weights[k] == reference[k]).all() for k in weights)
    assert not partial.exists()


def test_train_target_is_reproducible_under_a_seed(ag_small, tmp_path):
    from svp_hf.training import train_target

    args = {"max_steps": 1, "per_device_train_batch_size": 8, "seed": 0, "save_strategy": "no"}
    rows = ag_small.select(range(16))
    for name in ("a", "b"):
        train_target(rows, "bert-tiny", tmp_path / name, training_args=args, max_length=16)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
