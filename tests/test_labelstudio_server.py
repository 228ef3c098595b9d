"""`active-learn --oracle label-studio` against a real Label Studio server on 127.0.0.1.

The fixture starts ``label-studio start`` with a temporary data dir, an annotator whose API token it sets, and a second
annotator in the same organization; annotations are made through the official SDK (`tests/scripts/ls_annotate.py`,
run with Label Studio's own Python), as people would make them. The server comes from ``SVP_LABEL_STUDIO`` (the
``label-studio`` executable), else ``.ls-venv/`` (``make labelstudio``), else ``PATH``; without one these tests skip,
unless ``SVP_REQUIRE_LABEL_STUDIO=1`` (CI) makes that a failure.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from svp_hf import ConfigError
from svp_hf.cli import main
from svp_hf.labelstudio_api import LabelStudioClient

REPO = Path(__file__).resolve().parents[1]
ANNOTATE = REPO / "tests" / "scripts" / "ls_annotate.py"
TOKENS = {"a": "0123456789abcdef0123456789abcdef01234567", "b": "fedcba9876543210fedcba9876543210fedcba98"}
NAMES = ["World", "Sports", "Business", "Sci/Tech"]
pytestmark = pytest.mark.labelstudio


def _executable() -> str | None:
    for candidate in (os.environ.get("SVP_LABEL_STUDIO"), REPO / ".ls-venv" / "bin" / "label-studio"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return shutil.which("label-studio")


class Server:
    def __init__(self, executable: str, data_dir: Path):
        self.executable, self.data_dir = executable, data_dir
        self.python = str(Path(executable).parent / "python")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "SENTRY_DSN": ""}
        self.log = open(data_dir / "server.log", "w")  # noqa: SIM115 (closed in stop)

    def user(self, who: str) -> list[str]:
        return [f"--data-dir={self.data_dir}", f"--username={who}@example.com", "--password=svp-hf-test",
                f"--user-token={TOKENS[who]}", "--enable-legacy-api-token"]  # fmt: skip

    def start(self) -> None:
        command = [self.executable, "start", "--no-browser", "--internal-host=127.0.0.1", f"--port={self.port}"]
        self.process = subprocess.Popen(
            command + self.user("a"), env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 300  # the first start migrates a new SQLite database (about a minute)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"label-studio start exited with {self.process.returncode}: see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as reply:
                    if json.loads(reply.read()).get("status") == "UP":
                        break
            except OSError:
                time.sleep(1)
        else:
            self.stop()
            pytest.fail(f"Label Studio did not answer on {self.url}/health within 300 s")
        # a second annotator in the same organization, with a known token
        subprocess.run([self.executable, "init", *self.user("b")], env=self.env, stdout=self.log,
                       stderr=subprocess.STDOUT, check=True)  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def annotate(self, project: int, round_index: int, answers: dict[int, str], *, who="a", ground_truth=False):
        """One annotation by annotator ``who`` per listed task (pool index: class name, or "skip")."""
        plan = self.data_dir / f"plan_{time.monotonic_ns()}.json"
        body = {"round": round_index, "answers": {str(k): v for k, v in answers.items()}, "ground_truth": ground_truth}
        plan.write_text(json.dumps(body))
        done = subprocess.run(
            [self.python, str(ANNOTATE), self.url, TOKENS[who], str(project), str(plan)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert int(done.stdout.split()[-1]) == len(answers)

    def tasks(self, project: int) -> list[dict]:
        return LabelStudioClient(self.url, TOKENS["a"]).tasks(project)

    def predictions(self, project: int) -> dict[int, list[dict]]:
        """The pre-annotations of the project's tasks, by task id (the export lists only their ids)."""
        found: dict[int, list[dict]] = {}
        for p in LabelStudioClient(self.url, TOKENS["a"])._call("GET", "/api/predictions", query={"project": project}):
            found.setdefault(p["task"], []).append(p)
        return found


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    executable = _executable()
    if executable is None:
        message = "Label Studio is not installed (make labelstudio, or set SVP_LABEL_STUDIO)"
        if os.environ.get("SVP_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = Server(executable, tmp_path_factory.mktemp("label_studio"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def run(label_studio, ag_news_path, monkeypatch, tmp_path, capsys):
    """``run(*extra)``: active-learn on 300 AG News rows with the Label Studio oracle; its exit code and output."""
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKENS["a"])
    out = tmp_path / "al"

    def command(*extra):
        return ["active-learn", "--dataset", str(ag_news_path), "--split", "train[:300]", "--proxy", "tfidf",
                "--strategy", "margin", "--initial", "10", "--budgets", "20,30", "--batch-size", "10", "--seed", "0",
                "--oracle", "label-studio", "--label-studio-url", label_studio.url, "--output-dir", str(out),
                *extra]  # fmt: skip

    def go(*extra):
        code = main(command(*extra))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    go.out, go.command = out, command
    return go


def _project(out: Path) -> int:
    return json.loads((out / "label_studio.json").read_text())["project"]


def _pending_indices(out: Path, round_index: int) -> list[int]:
    with np.load(out / "pending" / f"round_{round_index:04d}.npz") as saved:
        return saved["indices"].tolist()


def _state(out: Path) -> dict:
    return json.loads((out / "state.json").read_text())


def _truth(ag_news_path, indices):
    from svp_hf.data import load_pool

    labels = load_pool(ag_news_path, "train[:300]")["label"]
    return {i: NAMES[labels[i]] for i in indices}


def test_two_rounds_annotated_in_label_studio(label_studio, run, ag_news_path):
    code, said = run()
    assert code == 0 and f"{label_studio.url}/projects/" in said
    out, project = run.out, _project(run.out)
    tasks = label_studio.tasks(project)
    query = _pending_indices(out, 0)
    assert sorted(t["data"]["svp_pool_index"] for t in tasks) == sorted(query) and len(query) == 10
    assert all(t["data"]["svp_round"] == 0 and not t["predictions"] for t in tasks)  # round 0 is random: no proxy
    assert not any(TOKENS["a"] in p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file())

    code, said = run()  # nothing annotated yet: it waits, imports nothing twice
    assert code == 0 and "0 of 10 tasks annotated" in said
    assert len(label_studio.tasks(project)) == 10 and _state(out)["pending"]["round"] == 0

    truth = _truth(ag_news_path, query)
    wrong, skipped, disputed = query[0], query[1], query[2]
    answers = {**truth, wrong: "Sprots", skipped: "skip"}  # a misspelled class, and a task skipped
    label_studio.annotate(project, 0, answers)
    code, said = run()
    assert code == 1 and "Sprots" in said and "World" in said  # names the unknown class and the known ones
    assert _state(out)["pending"]["round"] == 0 and not (out / "labeled").exists()

    other = next(n for n in NAMES if n != truth[wrong])  # the annotator fixes the typo, to a class that is not true
    label_studio.annotate(project, 0, {wrong: other})
    code, said = run()
    assert code == 0 and "9 of 10 tasks annotated" in said  # the skipped task is unanswered: the round waits

    # a second annotator labels the skipped task and disagrees on another: a tie, settled by a ground truth
    dissent = next(n for n in NAMES if n != truth[disputed])
    label_studio.annotate(project, 0, {skipped: truth[skipped], disputed: dissent}, who="b")
    code, said = run()
    assert code == 1 and "no majority" in said and _state(out)["pending"]["round"] == 0
    label_studio.annotate(project, 0, {disputed: truth[disputed]}, ground_truth=True)
    code, said = run()
    assert code == 0 and "Collected labels from Label Studio: 10 rows labeled" in said

    state = _state(out)
    assert state["pending"]["round"] == 1 and len(state["records"]) == 1
    record = state["records"][0]
    (dispute,) = record["label_studio"]["disagreements"]  # recorded, with who voted what and the rule that decided
    assert dispute["svp_pool_index"] == disputed and dispute["rule"] == "ground_truth"
    assert dispute["label"] == truth[disputed] and len(dispute["votes"]) == 2
    assert record["label_studio"]["project"] == project
    import datasets

    labeled = datasets.load_from_disk(str(out / "labeled"))
    got = dict(zip(labeled["svp_pool_index"], labeled["label"]))
    expected = {**truth, wrong: other}  # what the people said, a human mistake included
    assert {i: NAMES[y] for i, y in got.items()} == expected

    # round 1: tasks carry the proxy's guess as a pre-annotation; two left undone, committed with --accept-partial
    round1 = _pending_indices(out, 1)
    tasks = [t for t in label_studio.tasks(project) if t["data"]["svp_round"] == 1]
    assert sorted(t["data"]["svp_pool_index"] for t in tasks) == sorted(round1) and len(round1) == 10
    predictions = label_studio.predictions(project)
    for t in tasks:
        (prediction,) = predictions[t["id"]]
        assert prediction["model_version"] == "svp-hf tfidf round 1" and 0.25 <= prediction["score"] <= 1
        assert prediction["result"][0]["value"]["choices"][0] in NAMES
    truth1 = _truth(ag_news_path, round1)
    label_studio.annotate(project, 1, {i: truth1[i] for i in round1[:8]})
    code, said = run()
    assert code == 0 and "8 of 10 tasks annotated" in said and _state(out)["pending"]["round"] == 1
    code, said = run("--accept-partial")
    assert code == 0
    state = _state(out)
    assert state["records"][1]["answered"] == 8 and state["records"][1]["returned_to_pool"] == 2
    assert state["pending"]["round"] == 2
    assert len(datasets.load_from_disk(str(out / "labeled"))) == 18


KILL_AFTER = """
import os, signal, sys
from svp_hf import active, labelstudio_api
from svp_hf.cli import main

where = os.environ["SVP_KILL_AFTER"]
if where == "import":  # the tasks are in Label Studio, the round is not yet recorded as pending
    imported = labelstudio_api.LabelStudioClient.import_tasks
    def import_tasks(self, *args, **kwargs):
        imported(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    labelstudio_api.LabelStudioClient.import_tasks = import_tasks
else:  # the annotations are collected and checked, the round is not yet committed
    def commit(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    active.ActiveLearner._commit = commit
sys.exit(main(sys.argv[1:]))
"""


def _killed(run, where: str) -> None:
    env = {**os.environ, "SVP_KILL_AFTER": where}
    done = subprocess.run([sys.executable, "-c", KILL_AFTER, *run.command()], env=env, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def test_a_kill_between_import_and_commit_imports_and_commits_once(label_studio, run, ag_news_path):
    _killed(run, "import")
    out = run.out
    project = _project(out)
    assert len(label_studio.tasks(project)) == 10 and (_state(out) if (out / "state.json").exists() else {}).get(
        "pending") is None  # fmt: skip
    code, said = run()  # the same query again: its tasks are already there, none is imported twice
    assert code == 0 and "Round 0: annotate" in said, said
    assert len(label_studio.tasks(project)) == 10
    query = _pending_indices(out, 0)
    assert sorted(t["data"]["svp_pool_index"] for t in label_studio.tasks(project)) == sorted(query)

    label_studio.annotate(project, 0, _truth(ag_news_path, query))
    _killed(run, "commit")
    assert _state(out)["pending"]["round"] == 0 and not _state(out)["records"]
    code, said = run()
    assert code == 0 and "Collected labels from Label Studio: 10 rows labeled" in said
    state = _state(out)
    assert len(state["records"]) == 1 and state["pending"]["round"] == 1
    rounds = [t["data"]["svp_round"] for t in label_studio.tasks(project)]
    assert rounds.count(0) == 10 and rounds.count(1) == 10
    code, said = run()  # a rerun commits nothing twice and imports nothing twice
    assert code == 0 and len(_state(out)["records"]) == 1 and len(label_studio.tasks(project)) == 20


def test_a_wrong_key_or_server_is_one_typed_line(label_studio, run, monkeypatch):
    with pytest.raises(ConfigError, match="refused the API key"):
        LabelStudioClient(label_studio.url, "not-a-token").find_project("x")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-a-token")
    code, said = run()
    assert code != 0 and "LABEL_STUDIO_API_KEY" in said and len(said.strip().splitlines()) == 1
    assert not (run.out / "state.json").exists()


def test_client_errors_name_the_fix(monkeypatch):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot reach Label Studio.*label-studio start"):
        LabelStudioClient(f"http://127.0.0.1:{closed}", TOKENS["a"]).find_project("x")
    with pytest.raises(ConfigError, match="http"):
        LabelStudioClient("localhost:8080", TOKENS["a"])
    with pytest.raises(ConfigError, match="LABEL_STUDIO_API_KEY"):
        LabelStudioClient("http://localhost:8080", "")


def test_label_studio_url_without_that_oracle_is_refused(ag_news_path, tmp_path, capsys):
    code = main(["active-learn", "--dataset", str(ag_news_path), "--split", "train[:100]", "--proxy", "tfidf",
                 "--oracle", "human", "--label-studio-url", "http://127.0.0.1:8080",
                 "--output-dir", str(tmp_path / "al")])  # fmt: skip
    assert code == 1 and "--label-studio-url applies to --oracle label-studio" in capsys.readouterr().err
    assert not (tmp_path / "al").exists()
