import csv
import json
import os
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest

from svp_hf import BudgetError, ConfigError
from svp_hf.active import ActiveLearner, ActiveLearningConfig, plan_rounds


def al_cli(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "svp_hf", "active-learn", *map(str, args)], capture_output=True, text=True, **kwargs
    )


def test_plan_follows_the_schedule_and_batch_size():
    paper = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=0.02, budgets=[0.1, 0.2], batch_size=None)
    assert plan_rounds(paper, 15183) == [(304, 304), (1518, 1214), (3037, 1519)]
    auto = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=0.02, budgets=[0.1, 0.2])
    plan = plan_rounds(auto, 15183)
    assert plan[0] == (304, 304) and max(b for _, b in plan) == 304 and sum(b for _, b in plan) == 3037
    assert [t for t, _ in plan].count(1518) == 4  # 1214 more rows in queries of at most 304
    config = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=10, budgets=[30, 50], batch_size=8)
    assert plan_rounds(config, 100) == [(10, 10), (30, 8), (30, 8), (30, 4), (50, 8), (50, 8), (50, 4)]
    with pytest.raises(BudgetError, match="budgets must grow"):
        plan_rounds(ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=0.2, budgets=[0.1]), 1000)


@pytest.mark.parametrize("strategy", ["kcenters", "least_confidence", "margin"])
def test_active_learn_cli_on_real_ag_news(ag_news_path, tmp_path, strategy):
    """The issue's 'done when' command (fastText proxy, full AG News train split, 2% then 10% and 20%)."""
    out = tmp_path / "al"
    done = al_cli("--dataset", ag_news_path, "--split", "train", "--proxy", "fasttext", "--strategy", strategy,
                  "--initial", "0.02", "--budgets", "0.1,0.2", "--seed", "0", "--output-dir", out,
                  "--eval-split", "test")  # fmt: skip
    assert done.returncode == 0, done.stderr
    labeled = datasets.load_from_disk(str(out / "labeled"))
    assert labeled.num_rows == round(0.2 * 15183) == 3037
    assert len(set(labeled["svp_pool_index"])) == 3037
    pool = datasets.load_dataset("parquet", data_files=str(ag_news_path / "train.parquet"), split="train")
    assert labeled["label"] == pool.select(labeled["svp_pool_index"])["label"]  # simulated oracle: true labels
    records = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    sizes = [r["labeled_after"] for r in records]
    assert sizes[0] == 304 and 1518 in sizes and sizes[-1] == 3037  # queries of at most 304 rows ("auto")
    assert all(0 < r["queried"] <= 304 for r in records)
    assert sorted(set(labeled["svp_round"])) == list(range(len(records)))
    # the self-check (3-fold on the labeled rows) is timed apart from the fit that selection needs
    assert set(records[1]["timings_s"]) == {"proxy_fit", "proxy_check", "proxy_score", "strategy"}
    check = records[1]["proxy_self_check"]
    assert check["rows"] == 304 and check["majority_accuracy"] < check["accuracy"] <= 1 and not check["near_chance"]
    assert sum(records[-1]["class_counts"].values()) == 3037
    assert 0.5 < records[-1]["proxy_eval_accuracy"] <= 1.0
    # the proxy fitted on the final labeled set is recorded too (it selected nothing, so it has no round of its own)
    final = records[-1]["final_proxy"]
    assert final["labeled"] == 3037 and final["proxy_eval_accuracy"] > records[1]["proxy_eval_accuracy"]
    assert final["proxy_self_check"]["rows"] == 3037
    assert f"{len(records)}/{len(records)} rounds" in done.stdout and "Proxy self-check: " in done.stdout
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def _run_al(out, ag_news_path, *extra):
    return al_cli("--dataset", ag_news_path, "--split", "train[:3000]", "--proxy", "fasttext", "--strategy",
                  "margin", "--initial", "60", "--budgets", "0.1,0.2,0.3", "--batch-size", "40", "--seed", "3",
                  "--output-dir", out, *extra)  # fmt: skip


def test_sigkill_mid_run_resumes_to_the_same_result(ag_news_path, tmp_path):
    reference = _run_al(tmp_path / "ref", ag_news_path)
    assert reference.returncode == 0, reference.stderr
    expected = datasets.load_from_disk(str(tmp_path / "ref" / "labeled"))
    out = tmp_path / "killed"
    for delay in (3.0, 1.5):  # kill twice, at different moments
        proc = subprocess.Popen(
            [sys.executable, "-m", "svp_hf", "active-learn", "--dataset", str(ag_news_path), "--split", "train[:3000]",
             "--proxy", "fasttext", "--strategy", "margin", "--initial", "60", "--budgets", "0.1,0.2,0.3",
             "--batch-size", "40", "--seed", "3", "--output-dir", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 60
        while not (out / "state.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rounds_before = len(json.loads((out / "state.json").read_text())["records"])
    assert 0 < rounds_before < 22  # it really was interrupted mid-run
    resumed = _run_al(out, ag_news_path)
    assert resumed.returncode == 0, resumed.stderr
    got = datasets.load_from_disk(str(out / "labeled"))
    assert got.num_rows == expected.num_rows == 900
    assert len(set(got["svp_pool_index"])) == 900
    assert got["svp_pool_index"] == expected["svp_pool_index"]
    assert got["svp_round"] == expected["svp_round"]
    assert len((out / "rounds.jsonl").read_text().splitlines()) == len(
        (tmp_path / "ref" / "rounds.jsonl").read_text().splitlines()
    )


def test_resume_checks_the_config_but_allows_extending_budgets(ag_small, tmp_path):
    config = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=50, budgets=[100])
    ActiveLearner(ag_small, tmp_path / "al", config).run()
    other = ActiveLearningConfig(proxy="tfidf", strategy="entropy", initial=50, budgets=[100])
    with pytest.raises(ConfigError, match="other settings.*strategy: 'margin' -> 'entropy'"):
        ActiveLearner(ag_small, tmp_path / "al", other).run()
    longer = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=50, budgets=[100, 150])
    state = ActiveLearner(ag_small, tmp_path / "al", longer).run()
    assert len(state.indices) == 150 and len(set(state.indices.tolist())) == 150
    assert state.completed_rounds == 3


def test_strategy_arguments_reach_the_queries_not_the_random_initial_set(ag_small, tmp_path):
    """The strategy's arguments were once handed to the round-0 random draw too, which refused them."""
    config = ActiveLearningConfig(
        proxy="tfidf", strategy="cluster_margin", strategy_kwargs={"rare_below": 0, "candidate_factor": 3},
        initial=40, budgets=[80],
    )  # fmt: skip
    state = ActiveLearner(ag_small, tmp_path / "al", config).run()
    assert state.completed_rounds == 2 and len(set(state.indices.tolist())) == 80
    wrong = ActiveLearningConfig(proxy="tfidf", strategy="margin", strategy_kwargs={"rare_below": 0}, initial=40,
                                 budgets=[80])  # fmt: skip
    with pytest.raises(ConfigError, match="unknown margin strategy argument"):
        ActiveLearner(ag_small, tmp_path / "al2", wrong).run()


def test_max_rounds_then_resume(ag_small, tmp_path):
    config = ActiveLearningConfig(
        proxy="tfidf", strategy="least_confidence", initial=40, budgets=[80, 120], batch_size=None
    )
    learner = ActiveLearner(ag_small, tmp_path / "al", config)
    assert learner.run(max_rounds=2).completed_rounds == 2
    assert len((tmp_path / "al" / "rounds.jsonl").read_text().splitlines()) == 2
    state = ActiveLearner(ag_small, tmp_path / "al", config).run()
    assert state.completed_rounds == 3 and len(state.indices) == 120


def test_stratified_initial_set_follows_class_proportions(ag_small, tmp_path):
    config = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=100, budgets=[150], stratified=True)
    state = ActiveLearner(ag_small, tmp_path / "al", config).run(max_rounds=1)
    counts = np.bincount(state.labels, minlength=4)
    expected = np.bincount(np.array(ag_small["label"]), minlength=4) / 1200 * 100
    assert np.all(np.abs(counts - expected) < 1)


def _fill(pending_csv, out_csv, pool, override=None):
    with open(pending_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    names = pool.features["label"].names
    for row in rows:
        row["label"] = names[pool[int(row["svp_pool_index"])]["label"]]
    if override:
        override(rows)
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_human_round_trip_from_the_command_line(ag_news_path, tmp_path):
    out = tmp_path / "al"
    pool = datasets.load_dataset("parquet", data_files=str(ag_news_path / "train.parquet"), split="train[:1000]")
    args = ["--dataset", ag_news_path, "--split", "train[:1000]", "--proxy", "tfidf", "--strategy", "entropy",
            "--initial", "40", "--budgets", "80", "--oracle", "human", "--label-column", "no_such_column",
            "--label-names", "World,Sports,Business,Sci/Tech", "--output-dir", out]  # fmt: skip
    first = al_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "Round 0 needs labels" in first.stdout
    pending = out / "pending" / "round_0000.csv"
    with open(pending, newline="") as f:
        header = next(csv.reader(f))
    assert header == ["svp_round", "svp_pool_index", "text", "label"]

    again = al_cli(*args)  # no labels yet
    assert again.returncode == 1 and "waiting for labels" in again.stderr

    state_before = (out / "state.json").read_bytes()
    bad_cases = {
        "unknown_label": (lambda rows: rows[0].update(label="Weather"), "'Weather' is not a class"),
        "unknown_index": (lambda rows: rows[0].update(svp_pool_index="999"), "was not queried"),
        "duplicate": (lambda rows: rows.append(dict(rows[0])), "labeled twice"),
        "missing": (lambda rows: rows.pop(), "1 queried rows have no label"),
        "other_round": (lambda rows: [r.update(svp_round="3") for r in rows], "from round 3, round 0 is pending"),
    }
    for name, (edit, message) in bad_cases.items():
        _fill(pending, tmp_path / f"{name}.csv", pool, edit)
        done = al_cli(*args, "--labels", tmp_path / f"{name}.csv")
        assert done.returncode == 1 and message in done.stderr, (name, done.stderr)
        assert (out / "state.json").read_bytes() == state_before  # nothing changed

    _fill(pending, tmp_path / "good.csv", pool)
    done = al_cli(*args, "--labels", tmp_path / "good.csv")
    assert done.returncode == 0, done.stderr
    assert "Round 1 needs labels" in done.stdout
    # answer round 1 in the JSONL format this time
    rows = [json.loads(line) for line in (out / "pending" / "round_0001.jsonl").read_text().splitlines()]
    names = pool.features["label"].names
    for row in rows:
        row["label"] = names[pool[row["svp_pool_index"]]["label"]]
    (tmp_path / "r1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = al_cli(*args, "--labels", tmp_path / "r1.jsonl")
    assert done.returncode == 0, done.stderr
    assert "2/2 rounds" in done.stdout
    labeled = datasets.load_from_disk(str(out / "labeled"))
    assert labeled.num_rows == 80 and len(set(labeled["svp_pool_index"])) == 80
    assert labeled.features["no_such_column"].names == names
    assert labeled["no_such_column"] == pool.select(labeled["svp_pool_index"])["label"]
    assert not list((out / "pending").iterdir())


def _pending_round(pool, out):
    """A human-oracle run on ``pool`` whose round 0 (12 random rows) waits for labels; its pending rows."""
    config = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=12, budgets=[24], batch_size=None)
    learner = ActiveLearner(pool, out, config, oracle="human")
    learner.run()
    rows = [json.loads(line) for line in (out / "pending" / "round_0000.jsonl").read_text().splitlines()]
    return learner, rows


def _excel_csv(path, rows, fieldnames):
    """What Excel's "CSV UTF-8" writes: a byte-order mark and CRLF line endings."""
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, lineterminator="\r\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_label_files_from_spreadsheets_and_json_tools_round_trip(ag_small, tmp_path):
    """Regression (issue 14, item 7): label files as common tools write them: Excel CSV (byte-order mark, CRLF, the
    label column first, padded names, an empty leftover row), JSON lines with class ids (ints and whole floats) or
    padded class names."""
    pool = ag_small.select(range(60))
    names = pool.features["label"].names
    truth = pool["label"]
    files = {
        "excel.csv": lambda rows: [{**r, "label": f" {names[truth[r['svp_pool_index']]]}\u00a0"} for r in rows],
        "ids.jsonl": lambda rows: [
            {**r, "label": truth[r["svp_pool_index"]] * (1.0 if i % 2 else 1)} for i, r in enumerate(rows)
        ],
        "names.jsonl": lambda rows: [{**r, "label": f"\t{names[truth[r['svp_pool_index']]]} "} for r in rows],
    }
    for name, fill in files.items():
        learner, rows = _pending_round(pool, tmp_path / name)
        filled = fill(rows)
        if name.endswith(".csv"):
            _excel_csv(tmp_path / name / name, filled + [{}], ["label", "svp_round", "svp_pool_index", "text"])
            assert (tmp_path / name / name).read_bytes().startswith(b"\xef\xbb\xbflabel,")
        else:
            (tmp_path / name / name).write_text("".join(json.dumps(r) + "\n" for r in filled))
        state = learner.import_labels(tmp_path / name / name)
        assert state.completed_rounds == 1, name
        assert state.labels.tolist() == [truth[i] for i in state.indices], name


def test_label_zero_of_integer_labels_is_a_label(ag_small, tmp_path):
    """Regression (issue 14, item 7): with integer labels (classes "0".."3") a JSON ``"label": 0`` was "an empty
    label" while 1-3 were accepted, and a byte-order-marked CSV with ``label`` first lost its label column."""
    pool = ag_small.select(range(60)).cast_column("label", datasets.Value("int64"))
    truth = pool["label"]
    learner, rows = _pending_round(pool, tmp_path / "jsonl")
    filled = [{**r, "label": truth[r["svp_pool_index"]]} for r in rows]
    assert 0 in [r["label"] for r in filled]
    (tmp_path / "r0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in filled))
    state = learner.import_labels(tmp_path / "r0.jsonl")
    assert state.labels.tolist() == [truth[i] for i in state.indices]

    learner, rows = _pending_round(pool, tmp_path / "csv")
    filled = [{**r, "label": str(truth[r["svp_pool_index"]])} for r in rows]
    _excel_csv(tmp_path / "r0.csv", filled, ["label", "svp_pool_index", "svp_round", "text"])
    state = learner.import_labels(tmp_path / "r0.csv")
    assert state.labels.tolist() == [truth[i] for i in state.indices]


def test_bad_label_files_are_refused_with_a_clear_message(ag_small, tmp_path):
    """The validations hold for files with a byte-order mark and CRLF too; each refusal leaves the state as it was."""
    from svp_hf import LabelError

    pool = ag_small.select(range(60))
    names = pool.features["label"].names
    truth = pool["label"]
    out = tmp_path / "al"
    learner, rows = _pending_round(pool, out)
    good = [{**r, "label": names[truth[r["svp_pool_index"]]]} for r in rows]
    state_before = (out / "state.json").read_bytes()
    fields = ["svp_round", "svp_pool_index", "text", "label"]
    csv_cases = {
        "unknown class": (lambda rs: rs[0].update(label="Weather"), r":2: label 'Weather' is not a class; use one of"),
        "empty": (lambda rs: rs[1].update(label=" \u200b"), r":3: an empty label is not a class"),
        "not queried": (lambda rs: rs[0].update(svp_pool_index=999), "pool index 999 was not queried in round 0"),
        "duplicate": (lambda rs: rs.append(dict(rs[0])), "is labeled twice"),
        "missing": (lambda rs: rs.pop(), "1 queried rows have no label"),
        "other round": (lambda rs: [r.update(svp_round=3) for r in rs], "from round 3, round 0 is pending"),
        "id out of range": (lambda rs: rs[0].update(label="9"), r"label '9' is not a class; .* or a class id 0-3"),
    }
    for case, (edit, message) in csv_cases.items():
        filled = [dict(r) for r in good]
        edit(filled)
        _excel_csv(tmp_path / "bad.csv", filled, fields)
        with pytest.raises(LabelError, match=message):
            learner.import_labels(tmp_path / "bad.csv")
        assert (out / "state.json").read_bytes() == state_before, case
    jsonl_cases = {
        "not whole": (2.5, r":1: label 2.5 is not a whole number, so neither a class nor a class id; use one of"),
        "negative": (-1, r"label -1 is not a class"),
        "a list": (["World"], r"label \['World'\] \(a JSON list\) is not a class"),
        "null": (None, "an empty label is not a class"),
    }
    for case, (label, message) in jsonl_cases.items():
        filled = [{**r, "label": label if i == 0 else r["label"]} for i, r in enumerate(good)]
        (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in filled))
        with pytest.raises(LabelError, match=message):
            learner.import_labels(tmp_path / "bad.jsonl")
        assert (out / "state.json").read_bytes() == state_before, case
    with open(tmp_path / "semicolons.csv", "w", newline="", encoding="utf-8-sig") as f:
        csv.DictWriter(f, fieldnames=fields, delimiter=";").writeheader()
    with pytest.raises(LabelError, match="separated by ';'"):
        learner.import_labels(tmp_path / "semicolons.csv")
    (tmp_path / "latin1.csv").write_bytes("svp_round,svp_pool_index,text,label\n0,1,café,World\n".encode("cp1252"))
    with pytest.raises(LabelError, match="not UTF-8 text"):
        learner.import_labels(tmp_path / "latin1.csv")
    assert (out / "state.json").read_bytes() == state_before
    _excel_csv(tmp_path / "good.csv", good, fields)
    assert learner.import_labels(tmp_path / "good.csv").completed_rounds == 1


def test_simulation_needs_the_label_column(ag_small, tmp_path):
    with pytest.raises(ConfigError, match="simulated labeling reads labels"):
        ActiveLearner(ag_small.remove_columns("label"), tmp_path / "x", ActiveLearningConfig(proxy="tfidf"))


def test_a_foreign_folder_is_not_overwritten(ag_small, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(Exception, match="not an active-learning folder"):
        ActiveLearner(ag_small, tmp_path / "mine", ActiveLearningConfig(proxy="tfidf", initial=10, budgets=[20])).run()


def test_random_strategy_rounds_still_report_proxy_accuracy(ag_small, ag_test, tmp_path):
    config = ActiveLearningConfig(proxy="tfidf", strategy="random", initial=50, budgets=[100])
    state = ActiveLearner(ag_small, tmp_path / "al", config, eval_dataset=ag_test.select(range(500))).run()
    assert state.records[1]["timings_s"]["proxy_fit"] == 0  # selection itself trained nothing
    assert 0.25 < state.records[1]["proxy_eval_accuracy"] <= 1


def test_active_learn_config_file_with_a_budget_list(ag_news_path, tmp_path):
    cfg = tmp_path / "al.yaml"
    cfg.write_text(
        f"dataset: {ag_news_path}\nsplit: train[:1000]\nproxy: tfidf\nstrategy: entropy\ninitial: 50\n"
        "budgets: [100, 150]\nbatch-size: none\n"
    )
    done = al_cli("--config", cfg, "--output-dir", tmp_path / "al")
    assert done.returncode == 0, done.stderr
    state = json.loads((tmp_path / "al" / "state.json").read_text())
    assert [r["labeled_after"] for r in state["records"]] == [50, 100, 150]
    assert state["config"]["budgets"] == [100, 150] and state["config"]["batch_size"] is None


def test_resuming_on_another_pool_of_the_same_size_is_refused(ag_news_path, tmp_path):
    """Regression (issue 14, item 1): only the pool's size was compared, so a run resumed on other rows attached its
    labels to other texts. The state records a fingerprint of the pool's texts and labels."""
    import svp_hf

    config = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=40, budgets=[100, 200], batch_size=40)
    first = svp_hf.load_pool(ag_news_path, "train[:500]")
    svp_hf.ActiveLearner(first, tmp_path / "al", config, source={"dataset": "ag", "split": "train[:500]"}).run(
        max_rounds=2
    )
    other = svp_hf.load_pool(ag_news_path, "test[:500]")
    with pytest.raises(ConfigError, match=r"another pool \(ag split train\[:500\]\).*same number of rows"):
        svp_hf.ActiveLearner(other, tmp_path / "al", config, source={"dataset": "ag", "split": "test[:500]"}).run()
    # the same rows resume (and a copy of them counts as the same pool)
    state = svp_hf.ActiveLearner(first.flatten_indices(), tmp_path / "al", config).run()
    assert len(state.indices) == 200


def test_active_learn_defaults_hybrid_proxy_with_cluster_margin(tmp_path, banking77_path):
    """`svp-hf active-learn` with no proxy or strategy: the measured defaults (hybrid + cluster_margin), on the real
    Banking77 (77 classes), with the self-check in every round and in the summary."""
    banking = banking77_path
    out = tmp_path / "al"
    done = al_cli("--dataset", banking, "--split", "train[:800]", "--initial", "80", "--budgets", "160",
                  "--batch-size", "none", "--eval-split", "test[:400]", "--output-dir", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    state = json.loads((out / "state.json").read_text())
    assert state["config"]["proxy"] == "hybrid" and state["config"]["strategy"] == "cluster_margin"
    records = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["strategy"] for r in records] == ["random", "cluster_margin"]
    assert records[1]["proxy_self_check"]["rows"] == 80
    assert records[1]["proxy_self_check"]["accuracy"] > records[1]["proxy_self_check"]["majority_accuracy"]
    assert 0.2 < records[-1]["final_proxy"]["proxy_eval_accuracy"] <= 1  # 77 classes from 160 rows: well above 1/77
    assert "Proxy self-check: " in done.stdout
