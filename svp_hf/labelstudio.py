"""Label Studio's JSON task format, in and out, with no server: the pending round of an active-learning folder (or a
selection folder) as Label Studio tasks with the proxy's predictions as pre-annotations, and a Label Studio JSON export
read back as rows for the shared validator (`svp_hf.oracles.check_label_rows`).

Several annotators of one task: a ground-truth annotation (Label Studio's "ground truth" star, a reviewer's call)
decides; otherwise the majority of the annotators' choices; a tie is a `LabelError` naming the task and the votes, to
be settled in Label Studio (another annotation, or a ground truth). Every task whose annotators disagreed is recorded
in the round's record (``label_studio.disagreements``). Cancelled (skipped) annotations and annotations without a
choice are not votes; a task without votes is unanswered.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from .errors import ConfigError, LabelError
from .io import atomic_file
from .oracles import UNANSWERED, label_id

FROM_NAME = "label"  # the <Choices> control of the generated labeling config
LOCAL_FILES = "/data/local-files/?d="  # how Label Studio serves files under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT


def labeling_config(label_names, modality: str = "text") -> str:
    """The labeling config XML of a single-choice classification of ``text`` (or ``image``) into ``label_names``."""
    shown = "image" if modality == "image" else "text"
    tag = "Image" if modality == "image" else "Text"
    choices = "".join(f"    <Choice value={quoteattr(str(n))}/>\n" for n in label_names)
    return (
        f'<View>\n  <{tag} name="{shown}" value="${shown}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{shown}" choice="single" showInline="true" required="true">\n'
        f"{choices}  </Choices>\n</View>\n"
    )


def make_tasks(
    rows: list[dict[str, Any]],
    label_names,
    *,
    modality: str = "text",
    probs: np.ndarray | None = None,
    model_version: str | None = None,
) -> list[dict[str, Any]]:
    """Label Studio tasks of ``rows`` (each the ``data`` of one task: the text or image URL, ``svp_pool_index``,
    ``svp_round``, ``svp_score``...), each with the proxy's predicted class and its probability as a pre-annotation
    when ``probs`` (one row of class probabilities per task) is given. Label Studio's Data Manager sorts tasks by
    that score: the lowest first are the rows the proxy is least sure of."""
    shown = "image" if modality == "image" else "text"
    tasks = []
    for i, data in enumerate(rows):
        task: dict[str, Any] = {"data": {k: v for k, v in data.items() if v is not None}}
        if probs is not None:
            guess = int(np.argmax(probs[i]))
            result = {"from_name": FROM_NAME, "to_name": shown, "type": "choices"}
            result["value"] = {"choices": [str(label_names[guess])]}
            task["predictions"] = [
                {"model_version": model_version, "score": round(float(probs[i][guess]), 6), "result": [result]}
            ]
        tasks.append(task)
    return tasks


def export_folder(folder: str | Path, *, label_names=None, image_url_prefix: str = LOCAL_FILES):
    """``(tasks, labeling config XML, summary)`` for the pending round of an active-learning folder or the rows of a
    selection folder (``svp-hf select``; ``label_names`` when its rows have no ClassLabel column)."""
    folder = Path(folder)
    if (folder / "selection_config.json").is_file():  # first: save_to_disk writes a state.json of its own
        return _export_selection(folder, label_names)
    if (folder / "state.json").is_file():
        return _export_round(folder, image_url_prefix)
    raise ConfigError(
        f"{folder} is neither an active-learning folder (state.json) nor a selection folder (selection_config.json)"
    )


def _export_round(folder: Path, image_url_prefix: str):
    saved = json.loads((folder / "state.json").read_text())
    pending = saved.get("pending")
    if pending is None:
        raise LabelError(f"{folder} has no round waiting for labels (svp-hf active-learn --oracle human writes one)")
    r = pending["round"]
    name = f"round_{r:04d}"
    lines = (folder / "pending" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    with np.load(folder / "pending" / f"{name}.npz") as arrays:
        indices, scores = arrays["indices"], arrays["scores"]
        probs = arrays["probs"] if "probs" in arrays.files else None  # round 0 is random: no proxy, no guesses
    if [int(row["svp_pool_index"]) for row in rows] != indices.tolist():
        raise LabelError(f"{folder / 'pending' / name}.jsonl does not hold the pending query; rerun active-learn")
    modality = "image" if rows and "image" in rows[0] else "text"
    # the PNG files sit in pending/, which Label Studio serves as local files
    shown = [image_url_prefix + row["image"] if modality == "image" else row["text"] for row in rows]
    label_names = saved["label_names"]
    tasks = round_tasks(shown, modality, r, indices, scores, probs, label_names, saved["config"]["proxy"])
    summary = {"round": r, "tasks": len(tasks), "predictions": probs is not None, "modality": modality}
    return tasks, labeling_config(label_names, modality), summary


def round_tasks(shown, modality: str, round_index: int, indices, scores, probs, label_names, proxy: str):
    """The Label Studio tasks of one active-learning query: each row's text (or image URL) in ``shown``, its pool
    index, round and score, and the proxy's guess as a pre-annotation (model version ``svp-hf PROXY round R``)."""
    data = []
    for value, i in zip(shown, indices):
        item = {"svp_pool_index": int(i), "svp_round": int(round_index), "svp_score": _finite(scores[i])}
        item["image" if modality == "image" else "text"] = value
        data.append(item)
    model_version = f"svp-hf {proxy} round {round_index}"
    return make_tasks(data, label_names, modality=modality, probs=probs, model_version=model_version)


def _export_selection(folder: Path, label_names):
    import datasets

    config = json.loads((folder / "selection_config.json").read_text())["config"]
    ds = datasets.load_from_disk(str(folder))
    if config.get("image_column"):
        raise ConfigError("exporting an image selection to Label Studio is not supported yet; export text selections")
    feature = ds.features.get(config.get("label_column", "label"))
    if not label_names:
        if not isinstance(feature, datasets.ClassLabel):
            raise ConfigError(f"{folder} holds no class names (no ClassLabel column); give them with --label-names")
        label_names = feature.names
    text = config.get("text_column", "text")
    columns = ds.select_columns([text, "svp_pool_index", "svp_score", "svp_rank"]).to_dict()
    data = [
        {"text": t, "svp_pool_index": int(i), "svp_score": _finite(s), "svp_rank": int(k)}
        for t, i, s, k in zip(columns[text], columns["svp_pool_index"], columns["svp_score"], columns["svp_rank"])
    ]
    tasks = make_tasks(data, label_names)
    return tasks, labeling_config(label_names), {"round": None, "tasks": len(tasks), "predictions": False}


def write_export(tasks, config_xml: str, output: str | Path) -> tuple[Path, Path]:
    """Write the tasks (``output``, JSON) and the labeling config (beside it, ``.xml``), each atomically."""
    output = Path(output)
    if output.suffix.lower() != ".json":
        raise ConfigError(f"--output must be a .json file (Label Studio imports JSON tasks), got {output}")
    config_path = output.with_suffix(".xml")
    with atomic_file(output) as tmp:
        tmp.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    with atomic_file(config_path) as tmp:
        tmp.write_text(config_xml, encoding="utf-8")
    return output, config_path


def _finite(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


# -- reading an export -----------------------------------------------------------------------------------------------
def is_export(path: Path) -> bool:
    """Whether ``path`` is a Label Studio JSON export (a ``.json`` file holding a list), not JSON lines."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return f.read(4096).lstrip().startswith("[")


def read_export(path: str | Path, label_names) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """``(rows, notes)`` of a Label Studio JSON export (Export > JSON: a list of tasks with ``data`` and
    ``annotations``): one row per task for `svp_hf.oracles.check_label_rows`, its label decided by the module's rule
    (`UNANSWERED` when nobody chose a class), and ``notes`` for the round's record: annotation counts and the tasks
    whose annotators disagreed. Every vote must name one of ``label_names``."""
    path = Path(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise LabelError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
    return read_tasks(tasks, str(path), label_names)


def read_tasks(tasks, source: str, label_names) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """`read_export` of tasks already parsed (from a file, or from a Label Studio server); ``source`` names them in
    errors."""
    if not isinstance(tasks, list):
        raise LabelError(f"{source}: expected a list of Label Studio tasks, got a JSON {type(tasks).__name__}")
    label_names = [str(n) for n in label_names]
    rows, disagreements = [], []
    counts = Counter()
    for n, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise LabelError(f"{source}: item {n} is not a Label Studio task (an object with 'data')")
        where = f"{source}: task {task.get('id', f'#{n}')}"
        label, disagreement = _decide(task, where, label_names, counts)
        data = task["data"]
        row = {"svp_pool_index": data.get("svp_pool_index"), "label": label}
        if "svp_round" in data:
            row["svp_round"] = data["svp_round"]
        rows.append((where, row))
        if disagreement is not None:
            where_ = {"svp_pool_index": data.get("svp_pool_index"), "task": task.get("id")}
            disagreements.append({**where_, **disagreement})
    notes = {
        "label_studio": {
            "tasks": len(tasks),
            "annotations": counts["votes"],
            "cancelled": counts["cancelled"],
            "unanswered": sum(1 for _, row in rows if row["label"] is UNANSWERED),
            "disagreements": disagreements,
        }
    }
    return rows, notes


def _decide(task: dict, where: str, label_names: list[str], counts: Counter):
    """The class of one task from its annotations (see the module docstring), and its disagreement or None."""
    votes = []  # (annotator, class name, ground truth)
    for k, annotation in enumerate(task.get("annotations") or [], start=1):
        if not isinstance(annotation, dict):
            raise LabelError(f"{where}: annotation {k} is not a JSON object")
        if annotation.get("was_cancelled"):  # skipped in Label Studio
            counts["cancelled"] += 1
            continue
        who = _annotator(annotation, k)
        choices = _choices(annotation.get("result") or [], f"{where} (annotator {who})")
        if not choices:
            continue
        if len(choices) != 1:
            raise LabelError(f"{where}: annotator {who} chose {len(choices)} classes {choices}; one class per task")
        label_id(choices[0], label_names, f"{where} (annotator {who})")  # an unknown class is refused, win or lose
        votes.append((who, str(choices[0]).strip(), bool(annotation.get("ground_truth"))))
        counts["votes"] += 1
    if not votes:
        return UNANSWERED, None
    by_class: dict[str, list] = {}
    for who, choice, _ in votes:
        by_class.setdefault(choice, []).append(who)
    truth = {choice for _, choice, gt in votes if gt}
    if len(truth) > 1:
        raise LabelError(f"{where}: the ground-truth annotations disagree ({_votes(by_class)}); keep one ground truth")
    if truth:
        label, rule = truth.pop(), "ground_truth"
    else:
        ranked = sorted(by_class.items(), key=lambda kv: -len(kv[1]))
        if len(ranked) > 1 and len(ranked[0][1]) == len(ranked[1][1]):
            raise LabelError(
                f"{where}: the annotators disagree with no majority ({_votes(by_class)}); add an annotation or mark "
                "one as ground truth in Label Studio, then export again"
            )
        label, rule = ranked[0][0], "majority"
    disagreement = None if len(by_class) == 1 else {"votes": by_class, "label": label, "rule": rule}
    return label, disagreement


def _annotator(annotation: dict, k: int):
    who = annotation.get("completed_by")
    if isinstance(who, dict):  # some exports expand the user
        who = who.get("email") or who.get("id")
    return who if who is not None else f"#{k}"


def _choices(result: list, where: str) -> list | None:
    """The chosen classes of one annotation: its ``choices`` result of the ``label`` control (or its only ``choices``
    result when the labeling config names the control otherwise); None when it chose nothing."""
    if not isinstance(result, list):
        raise LabelError(f"{where}: 'result' is not a list")
    found = [x for x in result if isinstance(x, dict) and x.get("type") == "choices"]
    named = [x for x in found if x.get("from_name") == FROM_NAME]
    found = named or found
    if not found:
        return None
    if len(found) > 1:
        raise LabelError(f"{where}: {len(found)} choices results; the labeling config should have one <Choices>")
    value = found[0].get("value")
    choices = value.get("choices") if isinstance(value, dict) else None
    if not isinstance(choices, list):
        raise LabelError(f"{where}: a choices result without a 'value.choices' list")
    return choices or None


def _votes(by_class: dict[str, list]) -> str:
    return "; ".join(f"{choice}: annotators {', '.join(map(str, who))}" for choice, who in by_class.items())
