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
