import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from svp_hf.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "svp_hf", *map(str, args)], capture_output=True, text=True)


def test_select_end_to_end_on_real_ag_news_is_reproducible(ag_news_path, tmp_path):
    """The issue's 'done when' command, on the full local AG News train split, run twice."""
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        done = run_cli(
            "select", "--dataset", ag_news_path, "--split", "train", "--proxy", "fasttext", "--strategy", "entropy",
            "--budget", "0.1", "--seed", "0", "--output-dir", out,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert str(out) in done.stdout
        outs.append(datasets.load_from_disk(str(out)))
    a, b = outs
    assert a.num_rows == round(0.1 * 15183) == 1518
    assert len(set(a["svp_pool_index"])) == a.num_rows
    assert {"svp_score", "svp_rank"} <= set(a.column_names)
    assert a["svp_pool_index"] == b["svp_pool_index"] and a["svp_score"] == b["svp_score"]
    config = json.loads((tmp_path / "a" / "selection_config.json").read_text())
    assert Path(config["source"]["dataset"]) == ag_news_path.resolve()  # absolute: it resolves from anywhere
    assert config["command"].startswith("svp-hf select")


@pytest.mark.parametrize(
    "proxy, strategy",
    [("tfidf", "entropy"), ("tfidf", "least_confidence"), ("tfidf", "margin"), ("fasttext", "margin"),
     ("fasttext", "least_confidence"), ("fasttext", "random")],
)  # fmt: skip
def test_select_every_proxy_and_strategy_twice(ag_news_path, tmp_path, proxy, strategy):
    rows = []
    for name in ("a", "b"):
        args = ["select", "--dataset", str(ag_news_path), "--split", "train[:3000]", "--proxy", proxy,
                "--strategy", strategy, "--budget", "0.1", "--output-dir", str(tmp_path / name),
                "--quiet"]  # fmt: skip
        assert main(args) == 0
        rows.append(datasets.load_from_disk(str(tmp_path / name))["svp_pool_index"])
    assert len(rows[0]) == 300 == len(set(rows[0]))
    assert rows[0] == rows[1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--budget", "0"], "budget 0 must be positive"),
        (["--budget", "2.0"], "fraction above 1"),
        (
            ["--budget", "0.1", "--text-column", "nope"],
            "text column 'nope' not found; the dataset has columns: text, label",
        ),
        (["--budget", "0.1", "--strategy", "entropi"], "unknown strategy 'entropi'"),
        (["--budget", "0.1", "--proxy-kwargs", "{bad"], "not valid JSON"),
        (["--budget", "0.1", "--proxy-kwargs", '{"learning_rate": 1}'], "unknown fasttext proxy argument"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line_and_no_output(ag_news_path, tmp_path, extra, message):
    out = tmp_path / "out"
    args = ["select", "--dataset", ag_news_path, "--split", "train[:500]", "--strategy", "entropy",
            "--output-dir", out, *extra]  # fmt: skip
    done = run_cli(*args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_missing_dataset_path_is_one_line(tmp_path):
    done = run_cli("select", "--dataset", tmp_path / "missing", "--strategy", "entropy", "--budget", "0.1",
                   "--output-dir", tmp_path / "out")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"svp-hf: error: no such file or directory: '{tmp_path / 'missing'}'; pass an existing folder or a Hub id"
    ]
    assert not (tmp_path / "out").exists()


def test_missing_required_flag_and_existing_output(ag_news_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["select", "--dataset", str(ag_news_path), "--strategy", "entropy", "--output-dir", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "missing --budget" in capsys.readouterr().err
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "keep.txt").write_text("mine")
    code = main(["select", "--dataset", str(ag_news_path), "--strategy", "random", "--budget", "5",
                 "--output-dir", str(tmp_path / "exists")])  # fmt: skip
    assert code == 1 and "already exists" in capsys.readouterr().err
    assert (tmp_path / "exists" / "keep.txt").read_text() == "mine"


def test_debug_shows_the_traceback(tmp_path):
    done = run_cli("select", "--dataset", tmp_path / "missing", "--strategy", "entropy", "--budget", "0.1",
                   "--output-dir", tmp_path / "out", "--debug")  # fmt: skip
    assert done.returncode != 0 and "Traceback" in done.stderr and "DatasetNotFoundError" in done.stderr


def test_config_file_sets_defaults_and_flags_win(ag_news_path, tmp_path):
    cfg = tmp_path / "select.yaml"
    cfg.write_text(
        f"dataset: {ag_news_path}\nsplit: train[:1000]\nproxy: tfidf\nstrategy: margin\nbudget: 50\n"
        "proxy-kwargs:\n  C: 2.0\n"
    )
    assert (
        main(["select", "--config", str(cfg), "--budget", "20", "--output-dir", str(tmp_path / "o"), "--quiet"]) == 0
    )
    saved = json.loads((tmp_path / "o" / "selection_config.json").read_text())
    assert saved["num_selected"] == 20 and saved["config"]["strategy"] == "margin"
    assert saved["proxy_hyperparameters"]["C"] == 2.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgett: 3\n")
    done = run_cli("select", "--config", bad, "--output-dir", tmp_path / "x")
    assert done.returncode == 1 and "unknown key 'budgett'" in done.stderr and "budget" in done.stderr


def test_labeled_indices_file(ag_news_path, tmp_path):
    (tmp_path / "labeled.json").write_text(json.dumps(list(range(0, 1000, 5))))
    assert main(["select", "--dataset", str(ag_news_path), "--split", "train[:1000]", "--proxy", "tfidf",
                 "--strategy", "entropy", "--budget", "100", "--labeled-indices", str(tmp_path / "labeled.json"),
                 "--output-dir", str(tmp_path / "o"), "--quiet"]) == 0  # fmt: skip
    picked = datasets.load_from_disk(str(tmp_path / "o"))["svp_pool_index"]
    assert len(picked) == 100 and not any(i % 5 == 0 for i in picked)


def test_python_m_and_help():
    done = run_cli("--help")
    assert done.returncode == 0 and "select" in done.stdout
    done = run_cli("select", "--help")
    assert done.returncode == 0 and "--proxy-kwargs" in done.stdout and "--budget" in done.stdout


@pytest.mark.parametrize(
    "proxy, kwargs, strategy",
    [
        ("transformer", {"epochs": 1, "max_length": 32}, "kcenters"),
        ("transformer", {"epochs": 2, "max_length": 32}, "forgetting_events"),
        ("vdcnn", {"epochs": 1, "max_length": 128}, "entropy"),
        ("vdcnn", {"epochs": 2, "max_length": 128, "batch_size": 64}, "forgetting_events"),
    ],
)
def test_select_with_the_transformer_and_vdcnn_proxies(ag_news_path, tmp_path, proxy, kwargs, strategy):
    args = ["select", "--dataset", str(ag_news_path), "--split", "train[:400]", "--proxy", proxy,
            "--proxy-kwargs", json.dumps(kwargs), "--strategy", strategy, "--budget", "40", "--seed", "0",
            "--output-dir", str(tmp_path / "out"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert len(set(ds["svp_pool_index"])) == 40 == ds.num_rows
    config = json.loads((tmp_path / "out" / "selection_config.json").read_text())
    assert config["config"]["proxy"] == proxy and config["config"]["proxy_kwargs"] == kwargs


def test_active_learning_and_coreset_with_the_transformer_proxy(ag_news_path, tmp_path):
    common = ["--dataset", str(ag_news_path), "--split", "train[:400]", "--proxy", "transformer",
              "--proxy-kwargs", '{"epochs": 1, "max_length": 32}', "--seed", "0", "--quiet"]  # fmt: skip
    assert main(["active-learn", *common, "--strategy", "margin", "--initial", "40", "--budgets", "80",
                 "--output-dir", str(tmp_path / "al")]) == 0  # fmt: skip
    rounds = (tmp_path / "al" / "rounds.jsonl").read_text().splitlines()
    assert len(rounds) == 2 and json.loads(rounds[-1])["labeled_after"] == 80
    assert datasets.load_from_disk(str(tmp_path / "al" / "labeled")).num_rows == 80
    assert main(["coreset", *common, "--strategy", "entropy", "--keep", "0.5",
                 "--output-dir", str(tmp_path / "core")]) == 0  # fmt: skip
    assert datasets.load_from_disk(str(tmp_path / "core")).num_rows == 200


@pytest.mark.parametrize("content", ["[0, 1, 2.5, 7.9]", "[0, true]", '["3"]', "{}", "0 1 2.5"])
def test_labeled_indices_that_are_not_whole_numbers_are_refused(ag_news_path, tmp_path, content):
    """Regression (issue 14, item 6): 2.5 became 2 and true became 1; the CLI refuses what the Python API refuses."""
    path = tmp_path / "labeled.json"
    path.write_text(content)
    done = run_cli("select", "--dataset", ag_news_path, "--split", "train[:200]", "--proxy", "tfidf",
                   "--strategy", "margin", "--budget", "10", "--labeled-indices", path,
                   "--output-dir", tmp_path / "out")  # fmt: skip
    assert done.returncode != 0 and not (tmp_path / "out").exists()
    assert "--labeled-indices" in done.stderr and "integers" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_max_rounds_must_be_positive(ag_news_path, tmp_path):
    done = run_cli("active-learn", "--dataset", ag_news_path, "--split", "train[:300]", "--proxy", "tfidf",
                   "--initial", "30", "--budgets", "60", "--max-rounds", "-1",
                   "--output-dir", tmp_path / "al")  # fmt: skip
    assert done.returncode != 0 and "max_rounds must be a positive number" in done.stderr


def test_overwrite_onto_the_input_is_refused_and_the_source_survives(tmp_path, ag_small):
    """Regression (issue 14, item 4): ``--overwrite`` with ``--output-dir`` equal to the input deleted the source."""
    data = tmp_path / "pool"
    ag_small.select(range(200)).save_to_disk(str(data))
    for out in (data, tmp_path):
        done = run_cli("select", "--dataset", data, "--proxy", "tfidf", "--strategy", "margin", "--budget", "10",
                       "--output-dir", out, "--overwrite", "--quiet")  # fmt: skip
        assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
        assert "writing it could destroy the input: choose an output folder outside" in done.stderr
    assert datasets.load_from_disk(str(data)).num_rows == 200


def test_a_relative_dataset_path_is_recorded_so_it_resolves_from_anywhere(tmp_path, ag_small):
    """Regression (issue 14, item 8): a selection recorded ``--dataset`` as typed (relative to the caller's folder),
    so evaluating on it from another folder failed (or, through the datasets cache, read another folder's rows)."""
    work = tmp_path / "work"
    ag_small.select(range(200)).to_parquet(str(work / "data" / "train.parquet"))
    done = subprocess.run(
        [sys.executable, "-m", "svp_hf", "select", "--dataset", "data", "--proxy", "tfidf", "--strategy", "margin",
         "--budget", "10", "--output-dir", "out", "--quiet"],
        cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recorded = json.loads((work / "out" / "selection_config.json").read_text())["source"]["dataset"]
    assert recorded == str((work / "data").resolve())
    from svp_hf import load_pool

    assert load_pool(recorded, "train").num_rows == 200  # from this test's folder, not work/


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_train_epoch", "1"], "unknown flag --num_train_epoch: neither an svp-hf train flag nor a "
         "transformers.TrainingArguments field; did you mean --num_train_epochs?"),
        (["--max", "5"], "unknown flag --max"),  # argparse's prefix matching took it for --max-length 5
        (["--max_length", "64"], "did you mean --max-length?"),
        (["--no_such_training_flag", "3"], "unknown flag --no_such_training_flag"),
        (["--num_train_epochs", "-1"], "--num_train_epochs -1.0 would train nothing"),
        (["--num_train_epochs", "0"], "--num_train_epochs 0.0 would train nothing"),
        (["--max-length", "-5"], "argument --max-length: must be a positive number, got -5"),
        (["--max-length", "0"], "argument --max-length: must be a positive number, got 0"),
        (["--image-size", "0"], "argument --image-size: must be a positive number, got 0"),
    ],
)  # fmt: skip
def test_train_refuses_wrong_flags_in_one_line_before_any_work(ag_news_path, tmp_path, capsys, monkeypatch, flags,
                                                              message):  # fmt: skip
    """Regression (issue 14, item 5): wrong training flags were accepted (an abbreviation silently dropped, -1 epochs
    trained 0 steps and reported success, --max-length -5 died in an OverflowError)."""
    import svp_hf.data

    def no_work(*args, **kwargs):
        raise AssertionError("data was loaded")

    monkeypatch.setattr(svp_hf.data, "load_pool", no_work)
    try:
        code = main(["train", "--dataset", str(ag_news_path), "--model", "bert-tiny", "--output-dir",
                     str(tmp_path / "m"), *flags])  # fmt: skip
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m").exists()


def test_training_flags_map_to_their_fields():
    """Every TrainingArguments spelling the Trainer accepts reaches it: dashes, ``=value`` and ``--no_FIELD``."""
    from svp_hf.cli import _training_args

    assert _training_args(["--num-train-epochs=2", "--save_steps", "5", "--no_remove_unused_columns"]) == {
        "num_train_epochs": 2.0,
        "save_steps": 5,
        "remove_unused_columns": False,
    }
    assert _training_args(["--num_train_epochs", "0", "--max_steps", "3"]) == {"num_train_epochs": 0.0, "max_steps": 3}


def test_unreadable_or_empty_data_files_fail_in_one_typed_line(tmp_path):
    """Regression (issue 14, clean failures): a zero-row Parquet file gave datasets' "An error occurred while
    generating the dataset" after two lines of library logs; a corrupt file gave a raw ArrowInvalid."""
    import pandas as pd

    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=int)}).to_parquet(
        tmp_path / "empty.parquet"
    )
    (tmp_path / "broken.parquet").write_bytes(b"\x00\x01 not parquet")
    (tmp_path / "bad.csv").write_text('text,label\n"a,1\nb,2\n')
    expected = {
        "empty.parquet": "split 'train' has no rows",
        "broken.parquet": "could not read",
        "bad.csv": "could not read",
    }
    for name, message in expected.items():
        done = run_cli("select", "--dataset", tmp_path / name, "--proxy", "tfidf", "--strategy", "margin",
                       "--budget", "5", "--output-dir", tmp_path / "out", "--quiet")  # fmt: skip
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert message in done.stderr and "rerun with --debug" not in done.stderr  # a typed error, not a crash
        assert not (tmp_path / "out").exists()
