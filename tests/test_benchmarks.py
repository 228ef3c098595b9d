"""The Selection-via-Proxy benchmark harness (benchmarks/svp_speedup.py): what it records, and that a long run
interrupted part-way resumes from its finished cells instead of starting over."""

import json
from pathlib import Path

import pytest

from benchmarks import svp_speedup


@pytest.fixture
def ag_news(ag_news_path):
    return str(ag_news_path)


def _args(ag_news, out, *extra):
    return ["--dataset", ag_news, "--quick", "--pool-size", "300", "--budgets", "0.1,0.2", "--out", str(out), *extra]


def test_records_every_budget_with_real_targets(ag_news, tmp_path):
    out = tmp_path / "r.json"
    result = svp_speedup.main(_args(ag_news, out, "--methods", "fasttext,random", "--batch-size", "0.05"))
    runs = [r for r in result["active_learning"]["runs"] if "budget" in r]
    assert {(r["method"], r["budget"]) for r in runs} == {(m, b) for m in ("fasttext", "random") for b in (0.1, 0.2)}
    for r in runs:
        assert r["labeled"] == round(300 * r["budget"])
        assert sum(r["class_counts"].values()) == r["labeled"]
        assert 0.0 <= r["target_accuracy"] <= 1.0
    # 2% start (6 rows), then queries of at most 15 rows: 2 to reach 30 rows, 2 more to reach 60
    assert [r["rounds"] for r in runs if r["method"] == "fasttext"] == [2, 4]
    fasttext = [r for r in runs if r["method"] == "fasttext"]
    assert fasttext[1]["selection_s"] > fasttext[0]["selection_s"] > 0
    assert all(r["selection_s"] < fasttext[0]["selection_s"] for r in runs if r["method"] == "random")  # no proxy
    assert json.loads(out.read_text())["active_learning"]["budgets"] == [0.1, 0.2]
    assert not out.with_suffix(".partial").exists()  # the checkpoint goes once the result is written


class Stopped(Exception):
    """Stands for a run killed part-way (a KeyboardInterrupt here would stop pytest itself if it escaped)."""


def test_interrupted_run_resumes_from_finished_cells(ag_news, tmp_path, monkeypatch):
    calls = []

    def fake_target(target, train, test, seed, workdir):
        calls.append(train.num_rows)
        if len(calls) == 3:
            raise Stopped  # while training the third target
        return 0.5 + train.num_rows / 1000, 1.0

    monkeypatch.setattr(svp_speedup, "_train_target", fake_target)
    out = tmp_path / "r.json"
    args = _args(ag_news, out, "--methods", "fasttext,random")
    with pytest.raises(Stopped):
        svp_speedup.main(args)
    assert not out.exists()
    saved = json.loads((out.with_suffix(".partial") / "cells.json").read_text())
    assert list(saved["cells"]) == ["0/fasttext"]

    calls.clear()
    result = svp_speedup.main(args)
    assert calls == [30, 60]  # only the random cell was trained again
    accuracies = {(r["method"], r["budget"]): r["target_accuracy"] for r in result["active_learning"]["runs"]}
    assert accuracies == {
        ("fasttext", 0.1): 0.53,
        ("fasttext", 0.2): 0.56,
        ("random", 0.1): 0.53,
        ("random", 0.2): 0.56,
    }

    report = svp_speedup.report_markdown(result)
    assert "| selected by | 10% | 20% |" in report
    assert "| fasttext | 53.0 ± 0.0 | 56.0 ± 0.0 |" in report
    assert "| random | 53.0 ± 0.0 | 56.0 ± 0.0 |" in report

    # other settings do not reuse finished cells
    calls.clear()
    monkeypatch.setattr(svp_speedup, "_train_target", lambda *a: (calls.append(a[1].num_rows), (0.5, 1.0))[1])
    svp_speedup.main(_args(ag_news, tmp_path / "r.json", "--methods", "fasttext", "--strategy", "margin"))
    assert calls == [30, 60]


def test_unknown_method_is_refused(ag_news, tmp_path):
    with pytest.raises(SystemExit, match="unknown"):
        svp_speedup.main(_args(ag_news, tmp_path / "r.json", "--methods", "fasttext,oracle"))


def test_interrupted_coreset_run_resumes(ag_news, tmp_path, monkeypatch):
    calls = []

    def fake_target(target, train, test, seed, workdir):
        calls.append(train.num_rows)
        if len(calls) == 3:
            raise Stopped
        return 0.5, 1.0

    monkeypatch.setattr(svp_speedup, "_train_target", fake_target)
    args = _args(ag_news, tmp_path / "c.json", "--methods", "", "--coreset")
    with pytest.raises(Stopped):
        svp_speedup.main(args)
    calls.clear()
    result = svp_speedup.main(args)
    assert calls == [150, 150]  # full data and forgetting events were kept; entropy and random trained now
    kept = {(r["method"], r["keep"]) for r in result["coreset"]["runs"]}
    assert kept == {
        ("full data", 1.0),
        *((f"{m} (fasttext)", 0.5) for m in ("forgetting_events", "entropy", "random")),
    }
    assert [row["method"] for row in result["coreset_summary"]][0] == "full data"


def test_evaluates_on_validation_where_there_is_no_test_split(ag_news_path):
    sst2 = ag_news_path.parent / "sst2"
    if not sst2.exists():
        pytest.skip(f"{sst2} not found")
    args = svp_speedup.make_parser().parse_args(["--dataset", str(sst2), "--quick"])
    pool, evaluation = svp_speedup._load(args, svp_speedup.MODES["quick"])
    assert args.eval_split == "validation"
    assert (pool.num_rows, evaluation.num_rows) == (3000, 872)  # SST-2's validation split is smaller than 1,000 rows

    args = svp_speedup.make_parser().parse_args(["--dataset", str(sst2), "--quick", "--eval-split", "train[:500]"])
    assert svp_speedup._load(args, svp_speedup.MODES["quick"])[1].num_rows == 500


def test_proxy_words_cuts_only_what_the_proxy_reads(ag_news, tmp_path, monkeypatch):
    from svp_hf.data import TextClassificationTask

    trained_on = []

    def fake_target(target, train, test, seed, workdir):
        trained_on.append(max(len(t.split()) for t in train["text"]))
        return 0.5, 1.0

    read = []
    real_iter_texts = TextClassificationTask.iter_texts

    def spy_iter_texts(self, ds, batch_size=8192, max_words=None):
        for batch in real_iter_texts(self, ds, batch_size, max_words):
            read.append(max(len(t.split()) for t in batch.to_pylist()))
            yield batch

    monkeypatch.setattr(svp_speedup, "_train_target", fake_target)
    monkeypatch.setattr(TextClassificationTask, "iter_texts", spy_iter_texts)
    result = svp_speedup.main(
        _args(ag_news, tmp_path / "r.json", "--methods", "fasttext,random", "--proxy-words", "5")
    )
    assert result["proxy_words"] == 5
    assert read and max(read) == 5  # the fastText proxy read 5 words a row, in training and in scoring
    assert min(trained_on) > 5  # the target always trains on the full rows


# -- benchmarks/vs_small_text.py: svp-hf against small-text ---------------------------------------------------------
def _vs_args(banking, out, methods, *extra):
    return ["--dataset", str(banking), "--split", "train[:600]", "--eval-split", "test[:300]", "--seeds", "0",
            "--initial", "60", "--budgets", "120,180", "--methods", methods, "--output", str(out), *extra]  # fmt: skip


@pytest.fixture
def banking77(ag_news_path):
    path = ag_news_path.parent / "banking77"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def test_vs_small_text_cells_are_recorded_and_reused(banking77, tmp_path, monkeypatch):
    from benchmarks import vs_small_text

    out = tmp_path / "vs.json"
    results = vs_small_text.main(_vs_args(banking77, out, "tfidf:margin,tfidf:random,nosuchproxy:margin",
                                          "--small-text-python", str(tmp_path / "missing-python")))  # fmt: skip
    cells = results["cells"]
    assert sorted(cells) == ["tfidf:margin|seed=0", "tfidf:random|seed=0"]  # the unknown proxy is skipped
    initial = results["initial_sets"]["0"]
    assert len(initial) == 60 and len(set(initial)) == 60
    for cell in cells.values():
        assert set(cell["accuracy"]) == {"60", "120", "180"}
        assert all(0.0 <= a <= 1.0 for a in cell["accuracy"].values())
        assert [r["labeled_before"] for r in cell["rounds"]] == [0, 60, 120]  # one query per budget step
    # the same start for every method: identical accuracy at the initial set
    assert cells["tfidf:margin|seed=0"]["accuracy"]["60"] == cells["tfidf:random|seed=0"]["accuracy"]["60"]
    assert cells["tfidf:margin|seed=0"]["selection_s"] > cells["tfidf:random|seed=0"]["selection_s"]

    def recompute(*args, **kwargs):
        raise AssertionError("a finished cell was computed again")

    monkeypatch.setattr(vs_small_text, "run_svp_cell", recompute)
    again = vs_small_text.main(_vs_args(banking77, out, "tfidf:margin,tfidf:random"))
    assert again["cells"] == cells
    assert "| svp-hf tfidf:margin |" in vs_small_text.report_markdown(again)


def test_vs_small_text_runs_the_peer_from_its_own_environment(banking77, tmp_path):
    from benchmarks import vs_small_text

    python = vs_small_text.DEFAULT_SMALL_TEXT_PYTHON
    if not Path(python).exists():
        pytest.skip(f"small-text's environment {python} is absent (see benchmarks/vs_small_text.py to create it)")
    out = tmp_path / "vs.json"
    results = vs_small_text.main(_vs_args(banking77, out, "small-text:breaking_ties,tfidf:margin"))
    peer, ours = results["cells"]["small-text:breaking_ties|seed=0"], results["cells"]["tfidf:margin|seed=0"]
    # the same TF-IDF + linear SVM on the same 60 rows: the same accuracy before any query
    assert peer["accuracy"]["60"] == pytest.approx(ours["accuracy"]["60"], abs=0.02)
    assert all(0.0 <= a <= 1.0 for a in peer["accuracy"].values())
