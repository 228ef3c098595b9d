"""Label Studio's JSON task format, file based (no server): export the pending round as tasks with pre-annotations,
read hand-written exports in Label Studio's format (Export > JSON: tasks with ``annotations[].result[].value.choices``,
``was_cancelled``, ``ground_truth``, ``completed_by``) and commit the round through the label-file validator."""

import json
import xml.etree.ElementTree as ET

import pytest

from svp_hf import LabelError
from svp_hf.active import ActiveLearner, ActiveLearningConfig
from svp_hf.cli import main
from svp_hf.data import load_pool
from svp_hf.labelstudio import export_folder, labeling_config


def annotation(choice, who=1, *, cancelled=False, ground_truth=False):
    result = [] if choice is None else [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}
    ]  # fmt: skip
    return {"id": 1000 + who, "result": result, "was_cancelled": cancelled, "ground_truth": ground_truth,
            "completed_by": who, "lead_time": 3.2}  # fmt: skip


def ls_export(path, tasks, annotations_of):
    """A Label Studio export of ``tasks`` (as svp-hf exported them): ``annotations_of(pool_index)`` gives each task's
    annotations."""
    exported = [
        {"id": 100 + k, "data": t["data"], "annotations": annotations_of(t["data"].get("svp_pool_index", 0)),
         "predictions": t.get("predictions", []), "project": 1}
        for k, t in enumerate(tasks)
    ]  # fmt: skip
    path.write_text(json.dumps(exported, indent=2))
    return path


@pytest.fixture
def pool(ag_small):
    return ag_small.select(range(60))


def _pending(pool, out):
    config = ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=12, budgets=[24], batch_size=None)
    learner = ActiveLearner(pool, out, config, oracle="human")
    learner.run()
    return learner


def test_export_then_import_two_rounds_with_predictions(pool, tmp_path):
    names, truth = pool.features["label"].names, pool["label"]
    out = tmp_path / "al"
    learner = _pending(pool, out)
    tasks, config_xml, summary = export_folder(out)
    assert summary == {"round": 0, "tasks": 12, "predictions": False, "modality": "text"}
    assert all("predictions" not in t for t in tasks)  # round 0 is random: no proxy yet
    assert {t["data"]["svp_round"] for t in tasks} == {0}
    assert all(t["data"]["text"] == pool[t["data"]["svp_pool_index"]]["text"] for t in tasks)
    view = ET.fromstring(config_xml)
    assert [c.get("value") for c in view.find("Choices")] == names
    assert view.find("Choices").get("toName") == view.find("Text").get("name") == "text"

    export = ls_export(tmp_path / "r0.json", tasks, lambda i: [annotation(names[truth[i]])])
    state = learner.import_labels(export)  # what `active-learn --labels r0.json` does
    assert state.completed_rounds == 1 and state.labels.tolist() == [truth[i] for i in state.indices]
    assert state.records[0]["label_studio"]["annotations"] == 12

    learner.run()
    tasks, _, summary = export_folder(out)
    assert summary["round"] == 1 and summary["predictions"]
    for t in tasks:
        (prediction,) = t["predictions"]
        assert prediction["model_version"] == "svp-hf tfidf round 1"
        assert 1 / len(names) <= prediction["score"] <= 1
        assert prediction["result"][0]["value"]["choices"][0] in names
        assert t["data"]["svp_round"] == 1 and isinstance(t["data"]["svp_score"], float)
    export = ls_export(tmp_path / "r1.json", tasks, lambda i: [annotation(names[truth[i]])])
    state = learner.import_labels(export)
    assert state.completed_rounds == 2 and len(state.indices) == 24


def test_several_annotators_majority_ground_truth_and_skips(pool, tmp_path):
    names, truth = pool.features["label"].names, pool["label"]
    out = tmp_path / "al"
    learner = _pending(pool, out)
    tasks, _, _ = export_folder(out)
    first, second, third = (t["data"]["svp_pool_index"] for t in tasks[:3])
    right = {i: names[truth[i]] for i in range(len(pool))}
    wrong = {i: names[(truth[i] + 1) % len(names)] for i in range(len(pool))}

    def annotations_of(i):
        if i == first:  # 2 against 1: the majority wins, the disagreement is recorded
            return [annotation(right[i], 1), annotation(wrong[i], 2), annotation(right[i], 3)]
        if i == second:  # a tie settled by a reviewer's ground truth
            return [annotation(wrong[i], 1), annotation(right[i], 2, ground_truth=True)]
        if i == third:  # a skip and an empty submission are no votes
            return [annotation(wrong[i], 1, cancelled=True), annotation(None, 2), annotation(right[i], 3)]
        return [annotation(right[i], 2)]

    state = learner.import_labels(ls_export(tmp_path / "r0.json", tasks, annotations_of))
    assert state.labels.tolist() == [truth[i] for i in state.indices]
    notes = state.records[0]["label_studio"]
    assert notes["cancelled"] == 1 and notes["unanswered"] == 0
    assert [(d["svp_pool_index"], d["rule"]) for d in notes["disagreements"]] == [
        (first, "majority"),
        (second, "ground_truth"),
    ]
    assert notes["disagreements"][0]["votes"] == {right[first]: [1, 3], wrong[first]: [2]}
    assert json.loads((out / "rounds.jsonl").read_text().splitlines()[0])["label_studio"] == notes


def test_bad_exports_are_refused_and_change_nothing(pool, tmp_path):
    names, truth = pool.features["label"].names, pool["label"]
    out = tmp_path / "al"
    learner = _pending(pool, out)
    tasks, _, _ = export_folder(out)
    first = tasks[0]["data"]["svp_pool_index"]
    queried = {t["data"]["svp_pool_index"] for t in tasks}
    not_queried = next(i for i in range(len(pool)) if i not in queried)
    other_round = {**tasks[0], "data": {**tasks[0]["data"], "svp_round": 3}}
    before = (out / "state.json").read_bytes()

    def good(i):
        return [annotation(names[truth[i]])]

    cases = {
        "tie": (tasks, lambda i: [annotation("World", 1), annotation("Sports", 2)] if i == first else good(i),
                r"task 100: the annotators disagree with no majority \(World: annotators 1; Sports: annotators 2\)"),
        "unknown class, outvoted": (
            tasks, lambda i: [*good(i), *good(i), annotation("Weather", 7)] if i == first else good(i),
            r"task 100 \(annotator 7\): label 'Weather' is not a class; use one of"),
        "two choices": (tasks, lambda i: [{"result": [{"type": "choices", "from_name": "label",
                                          "value": {"choices": ["World", "Sports"]}}]}] if i == first else good(i),
                        "chose 2 classes"),
        "missing task": (tasks[1:], good, r"1 queried rows have no label.*--accept-partial"),
        "duplicate task": ([*tasks, tasks[0]], good, "is labeled twice"),
        "other round": ([other_round, *tasks[1:]], good, "from round 3, round 0 is pending"),
        "not queried": ([{"data": {"text": "x", "svp_pool_index": not_queried, "svp_round": 0}}, *tasks], good,
                        f"pool index {not_queried} was not queried in round 0"),
        "not svp-hf's task": ([{"data": {"text": "x"}}, *tasks], good, "needs integer svp_pool_index"),
        "unannotated": (tasks, lambda i: [] if i == first else good(i), "1 queried rows have no label"),
    }  # fmt: skip
    for case, (case_tasks, annotations_of, message) in cases.items():
        with pytest.raises(LabelError, match=message):
            learner.import_labels(ls_export(tmp_path / "bad.json", case_tasks, annotations_of))
        assert (out / "state.json").read_bytes() == before, case
    (tmp_path / "broken.json").write_text('[{"data": ')
    with pytest.raises(LabelError, match="not JSON"):
        learner.import_labels(tmp_path / "broken.json")
    assert learner.import_labels(ls_export(tmp_path / "good.json", tasks, good)).completed_rounds == 1


def test_accept_partial_commits_the_answered_tasks_and_returns_the_rest(pool, tmp_path):
    names, truth = pool.features["label"].names, pool["label"]
    out = tmp_path / "al"
    learner = _pending(pool, out)
    tasks, _, _ = export_folder(out)
    skipped = [t["data"]["svp_pool_index"] for t in tasks[:3]]

    def annotations_of(i):
        return [annotation(names[truth[i]], cancelled=True)] if i in skipped else [annotation(names[truth[i]])]

    export = ls_export(tmp_path / "r0.json", tasks, annotations_of)
    with pytest.raises(LabelError, match="3 queried rows have no label"):
        learner.import_labels(export)
    state = learner.import_labels(export, accept_partial=True)
    record = state.records[0]
    assert (record["queried"], record["answered"], record["returned_to_pool"]) == (12, 9, 3)
    assert record["labeled_after"] == len(state.indices) == 9
    assert not set(skipped) & set(state.indices.tolist())
    assert not (out / "pending" / "round_0000.npz").exists()
    learner.run()  # the next query may pick the returned rows again
    assert learner._pending()["round"] == 1
    with pytest.raises(LabelError, match="none of the 12 queried rows of round 1 is labeled yet"):
        learner.import_labels(ls_export(tmp_path / "none.json", export_folder(out)[0], lambda i: []),
                              accept_partial=True)  # fmt: skip


def test_command_line_round_trip(ag_news_path, tmp_path, capsys):
    out, data = tmp_path / "al", ["--dataset", str(ag_news_path), "--split", "train[:60]"]
    al = ["active-learn", *data, "--proxy", "tfidf", "--strategy", "margin", "--initial", "12", "--budgets", "24",
          "--batch-size", "none", "--oracle", "human", "--output-dir", str(out)]  # fmt: skip
    assert main(al) == 0
    assert "svp-hf export-label-studio" in capsys.readouterr().out
    assert main(["export-label-studio", str(out), "--output", str(tmp_path / "tasks.json")]) == 0
    assert "Wrote 12 Label Studio tasks of round 0" in capsys.readouterr().out
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert ET.fromstring((tmp_path / "tasks.xml").read_text()).tag == "View"

    pool = load_pool(ag_news_path, "train[:60]")
    names, truth = pool.features["label"].names, pool["label"]
    export = ls_export(tmp_path / "export.json", tasks, lambda i: [annotation(names[truth[i]])])
    assert main(["import-label-studio", str(out), str(export)]) == 0
    assert "Imported round 0 from Label Studio: 12 rows labeled" in capsys.readouterr().out
    assert main(["import-label-studio", str(out), str(export)]) == 1  # committed once; a rerun changes nothing
    assert "has no round waiting for labels" in capsys.readouterr().err
    assert main(al) == 0 and "Round 1 needs labels" in capsys.readouterr().out
    assert main(["export-label-studio", str(out), "--output", str(tmp_path / "r1.json")]) == 0
    assert "of round 1 with the proxy's predictions" in capsys.readouterr().out


def test_selection_folder_export(ag_small, tmp_path, capsys):
    import svp_hf

    result = svp_hf.select(ag_small.select(range(60)), proxy="tfidf", strategy="margin", budget=10, seed=0)
    result.save_to_disk(tmp_path / "sel")
    assert main(["export-label-studio", str(tmp_path / "sel"), "--output", str(tmp_path / "sel.json")]) == 0
    tasks = json.loads((tmp_path / "sel.json").read_text())
    assert [t["data"]["svp_rank"] for t in tasks] == list(range(10))
    assert [t["data"]["svp_pool_index"] for t in tasks] == result.indices.tolist()
    assert "Wrote 10 Label Studio tasks of the selection" in capsys.readouterr().out


def test_labeling_config_escapes_class_names():
    view = ET.fromstring(labeling_config(['a "b"', "c<d>&e"], "image"))
    assert [c.get("value") for c in view.find("Choices")] == ['a "b"', "c<d>&e"]
    assert view.find("Image").get("value") == "$image"


def test_image_round_exports_png_urls_and_an_image_config(cifar_small, tmp_path):
    pool = cifar_small.select(range(40)).remove_columns("label")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    config = ActiveLearningConfig(
        proxy="timm", strategy="entropy", initial=5, budgets=[10], image_column="image", label_names=names
    )
    learner = ActiveLearner(pool, tmp_path / "al", config, oracle="human")
    learner.run()
    tasks, config_xml, summary = export_folder(tmp_path / "al")
    assert summary["modality"] == "image" and summary["tasks"] == 5
    for t in tasks:
        url = t["data"]["image"]
        assert url == f"/data/local-files/?d=round_0000_images/{t['data']['svp_pool_index']}.png"
        assert (tmp_path / "al" / "pending" / url.split("?d=")[1]).is_file()
    assert ET.fromstring(config_xml).find("Choices").get("toName") == "image"
    export = ls_export(tmp_path / "r0.json", tasks, lambda i: [
        {"result": [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]}
    ])  # fmt: skip
    state = learner.import_labels(export)
    assert state.labels.tolist() == [3] * 5
