"""Who labels an active-learning query: the oracle.

An oracle gets each query (the pool rows a round picked) and either answers at once (`SimulatedOracle`: the labels
the pool already has) or hands the rows to people and answers later (`FileOracle`: ``pending/round_NNNN.{csv,jsonl}``
to fill in, or a Label Studio JSON export of the round, read back with `FileOracle.collect`). `ActiveLearner` keeps
the rounds and the state; what comes back from people goes through one validator, `check_label_rows`, so every way of
labeling obeys the same rules.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, LabelError
from .io import atomic_directory, atomic_file


@dataclass
class CollectedLabels:
    """An answer to a pending round: the label id of each queried row, in query order (``-1``: not answered, only
    with ``accept_partial``; the row goes back to the pool), and ``notes`` for the round's record (for example the
    rows on which annotators disagreed)."""

    labels: np.ndarray
    notes: dict[str, Any] = field(default_factory=dict)


class LabelsPending(LabelError):
    """The pending round is not fully answered yet (and ``accept_partial`` was not given): nothing was changed. Raised
    by the `collect` of an oracle that `collects_itself`; `ActiveLearner.run` then waits instead of failing."""


class Oracle:
    """The labeler of an active-learning run.

    `ask` receives a query: ``{"round": r, "indices": pool rows, "scores": ..., "record": ...}``. It returns the label
    ids of the rows when it knows them now, or ``None`` after handing the rows over (the run then stops, its state
    records the pending round, and a later `collect` answers it)."""

    name: str = ""
    answers_now: bool = True  # False: `ask` hands the query over and the run waits for `collect`
    collects_itself: bool = False  # True: `collect(None, ...)` fetches the answer (a rerun collects, no --labels)

    def __init__(self, pool, task, folder: Path):
        self.pool, self.task, self.dir = pool, task, folder

    def prepare(self) -> None:
        """Check what `ask` will need (a server, a key) before the run writes anything; nothing by default."""

    def ask(self, query: dict[str, Any]) -> np.ndarray | None:
        raise NotImplementedError

    def collect(
        self, answer: Any, round_index: int, indices: np.ndarray, *, accept_partial: bool = False
    ) -> CollectedLabels:
        """The label ids of ``indices`` (in that order) from an answer to the pending round, validated; with
        ``accept_partial`` the rows left unanswered get ``-1``."""
        raise ConfigError(f"the {self.name} oracle answers at once; there is nothing to collect")

    def pending_files(self, round_index: int) -> list[str]:
        """Files (relative to the run's folder) that hold the pending query for people to fill in."""
        return []


class SimulatedOracle(Oracle):
    """Reads the labels the pool already has (simulated active learning, as in benchmarks)."""

    name = "simulate"

    def ask(self, query: dict[str, Any]) -> np.ndarray:
        labels = self.task.encode_labels(self.pool.select(query["indices"]))
        missing = int((labels < 0).sum())
        if missing:
            raise LabelError(f"{missing} queried rows have no label in column {self.task.label_column!r}")
        return labels


class FileOracle(Oracle):
    """People label each query in a file: ``pending/round_NNNN.csv`` and ``.jsonl`` (the same rows: round, pool index,
    the text or the PNG file name of the image, an empty ``label`` to fill), read back by `collect` with
    `read_label_file`'s rules. `collect` also reads a Label Studio JSON export of the round (a ``.json`` file holding
    a list of tasks; `svp_hf.labelstudio.read_export`)."""

    name = "human"
    answers_now = False

    def pending_files(self, round_index: int) -> list[str]:
        name = f"round_{round_index:04d}"
        return [f"pending/{name}.jsonl", f"pending/{name}.csv"]

    def ask(self, query: dict[str, Any]) -> None:
        r = query["round"]
        name = f"round_{r:04d}"
        pending_dir = self.dir / "pending"
        if self.task.modality == "image":  # annotators get PNG files; the row names the file
            shown, images = "image", self._export_images(query["indices"], pending_dir / f"{name}_images")
            inputs = [f"{name}_images/{p}" for p in images]
        else:
            shown, inputs = "text", self.pool.select(query["indices"])[self.task.text_column]
        rows = [
            {"svp_round": r, "svp_pool_index": int(i), shown: t, "label": ""} for i, t in zip(query["indices"], inputs)
        ]
        jsonl, csv_file = (self.dir / f for f in self.pending_files(r))
        with atomic_file(jsonl) as tmp:
            tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        with atomic_file(csv_file) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["svp_round", "svp_pool_index", shown, "label"])
            writer.writeheader()
            writer.writerows(rows)
        return None

    def _export_images(self, indices: np.ndarray, folder: Path) -> list[str]:
        """Write the queried images as ``<pool index>.png`` into ``folder`` (atomically); returns the file names."""
        rows = self.pool.select(indices).select_columns([self.task.image_column])
        names = []
        with atomic_directory(folder, overwrite=True) as tmp:
            for i, row in zip(indices, rows):
                names.append(f"{int(i)}.png")
                row[self.task.image_column].save(tmp / names[-1], format="PNG")
        return names

    def collect(
        self, answer: Any, round_index: int, indices: np.ndarray, *, accept_partial: bool = False
    ) -> CollectedLabels:
        path = Path(answer)
        from .labelstudio import is_export, read_export

        if is_export(path):
            rows, notes = read_export(path, self.task.label_names)
            labels = check_label_rows(
                rows, round_index, indices, self.task.label_names, source=str(path), accept_partial=accept_partial
            )
            return CollectedLabels(labels, notes)
        labels = read_label_file(path, round_index, indices, self.task.label_names, accept_partial=accept_partial)
        return CollectedLabels(labels)


def _label_studio(pool, task, folder: Path, **options) -> Oracle:
    from .labelstudio_api import LabelStudioOracle

    return LabelStudioOracle(pool, task, folder, **options)


ORACLES: dict[str, Any] = {"simulate": SimulatedOracle, "human": FileOracle, "label-studio": _label_studio}


def build_oracle(name: str, pool, task, folder: Path, **options) -> Oracle:
    """The oracle called ``name``; ``options`` go to its constructor (``label-studio``: ``url``, ``api_key``)."""
    if name not in ORACLES:
        raise ConfigError(f"oracle must be one of {', '.join(repr(n) for n in ORACLES)}, got {name!r}")
    if options and name != "label-studio":
        raise ConfigError(f"the {name} oracle takes no options, got {sorted(options)}")
    return ORACLES[name](pool, task, folder, **options)


# -- the validator of human labels --------------------------------------------------------------------------------
UNANSWERED = object()  # the label of a row that people have not answered yet (a task nobody annotated)


def check_label_rows(
    rows, round_index: int, indices: np.ndarray, label_names, *, source: str, accept_partial: bool = False
) -> np.ndarray:
    """The label ids of ``indices`` from rows that people answered, whatever wrote them (a label file, a Label Studio
    export): ``rows`` are ``(where, row)`` pairs, ``where`` naming the row in messages (``file.csv:3``, ``export.json:
    task 17``) and ``row`` a mapping with ``svp_pool_index``, ``svp_round`` (optional) and ``label``. A label is a
    class name (surrounding whitespace ignored) or a whole number (``2``, ``2.0``, ``"2"``): the class of that name
    when the classes are numbers (a pool with integer labels), else the class id, in the order of ``labeled/``'s
    ClassLabel. Every row must be one queried in ``round_index``, once; every queried row needs a label. Any problem
    raises `LabelError` naming the row.

    With ``accept_partial`` a queried row without a row, with an empty label or labeled `UNANSWERED` gets ``-1``
    (not answered) instead of an error; at least one row must be answered."""
    label_names = list(label_names)
    names = {n: i for i, n in enumerate(label_names)}
    # ids are accepted unless a class is itself named by a number: "1" would then be ambiguous
    ids_allowed = not any(_whole_number(n) is not None for n in label_names)
    wanted = {int(i) for i in indices}
    got: dict[int, int] = {}
    seen: set[int] = set()
    for where, row in rows:
        row_round, idx = _whole_number(row.get("svp_round", round_index)), _whole_number(row.get("svp_pool_index"))
        if row_round is None or idx is None:
            raise LabelError(f"{where}: needs integer svp_pool_index and svp_round fields")
        if row_round != round_index:
            raise LabelError(f"{where}: the row is from round {row_round}, round {round_index} is pending")
        if idx not in wanted:
            raise LabelError(f"{where}: pool index {idx} was not queried in round {round_index}")
        if idx in seen:
            raise LabelError(f"{where}: pool index {idx} is labeled twice")
        seen.add(idx)
        label = row.get("label")
        if label is UNANSWERED or (accept_partial and _is_empty(label)):
            continue
        got[idx] = _label_id(label, names, ids_allowed, where)
    missing = sorted(wanted - set(got))
    if missing and not accept_partial:
        raise LabelError(
            f"{source}: {len(missing)} queried rows have no label, e.g. pool indices {missing[:5]} "
            "(--accept-partial commits the labeled rows and returns the others to the pool)"
        )
    if not got:
        raise LabelError(f"{source}: none of the {len(wanted)} queried rows of round {round_index} is labeled yet")
    return np.array([got.get(int(i), -1) for i in indices], dtype=np.int64)


def read_label_file(
    path: Path, round_index: int, indices: np.ndarray, label_names, *, accept_partial: bool = False
) -> np.ndarray:
    """The label ids of ``indices`` from a filled ``pending/`` file, as spreadsheets and JSON tools write it: CSV
    (UTF-8 with or without a byte-order mark, any line endings) or JSON lines, checked by `check_label_rows` (whose
    messages name the file and line)."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"label file {path} does not exist")
    rows = [(f"{path}:{line_no}", row) for line_no, row in _label_file_rows(path)]
    return check_label_rows(rows, round_index, indices, label_names, source=str(path), accept_partial=accept_partial)


# stripped from label cells besides whitespace: what editors and spreadsheets leave at the ends of a pasted value
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def _label_file_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of a label file; CSV rows whose cells are all empty (a spreadsheet's leftovers) are
    skipped. ``utf-8-sig`` reads files with and without a byte-order mark (Excel's "CSV UTF-8" writes one)."""
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                reader.fieldnames = [(name or "").strip(" \t" + _INVISIBLE) for name in reader.fieldnames or []]
                if len(reader.fieldnames) == 1 and ";" in reader.fieldnames[0]:
                    raise LabelError(
                        f"{path}: the columns are separated by ';', not ','; save it as 'CSV UTF-8 (Comma delimited)'"
                    )
                rows = []
                for row in reader:
                    if any(isinstance(v, str) and v.strip(" \t" + _INVISIBLE) for v in row.values()):
                        rows.append((reader.line_num, row))
                return rows
        rows = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise LabelError(f"{path}: not JSON lines ({err.msg} at line {line_no})") from err
            if not isinstance(row, dict):
                raise LabelError(f"{path}:{line_no}: expected a JSON object per line, got {type(row).__name__}")
            rows.append((line_no, row))
        return rows
    except UnicodeDecodeError as err:
        raise LabelError(
            f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8 (Excel: 'CSV UTF-8 (Comma delimited)')"
        ) from None


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is one: ``3``, ``3.0``, ``"3"``, ``" 3.0 "``; else None (bools are not numbers)."""
    if isinstance(value, str):
        text = value.strip(" \t" + _INVISIBLE)
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return None


def label_id(value: Any, label_names, where: str) -> int:
    """The class id of one label (a class name or id, as `check_label_rows` reads it); `LabelError` names ``where``."""
    label_names = [str(n) for n in label_names]
    ids_allowed = not any(_whole_number(n) is not None for n in label_names)
    return _label_id(value, {n: i for i, n in enumerate(label_names)}, ids_allowed, where)


def _label_id(value: Any, names: dict[str, int], ids_allowed: bool, where: str) -> int:
    """The class id of one label cell (see `read_label_file`); `LabelError` names the classes."""
    classes = list(names)
    hint = f"use one of {classes}"
    if ids_allowed:
        hint += f" or a class id 0-{len(classes) - 1} (0 = {classes[0]!r})"
    if isinstance(value, float) and value != value:  # NaN: how pandas writes an empty cell
        value = None
    if isinstance(value, bool):  # JSON true / false: only a class of that name
        value = str(value)
    if isinstance(value, str):
        value = value.strip().strip(_INVISIBLE).strip()
        if value in names:
            return names[value]
    if value is None or value == "":
        raise LabelError(f"{where}: an empty label is not a class; {hint}")
    if not isinstance(value, (str, int, float)):
        raise LabelError(f"{where}: label {value!r} (a JSON {type(value).__name__}) is not a class; {hint}")
    number = _whole_number(value)
    if number is not None and str(number) in names:  # integer labels: the classes are named by their values
        return names[str(number)]
    if number is not None and ids_allowed and 0 <= number < len(classes):
        return number
    if number is None and _is_number(str(value)):  # 2.5
        raise LabelError(f"{where}: label {value!r} is not a whole number, so neither a class nor a class id; {hint}")
    raise LabelError(f"{where}: label {value!r} is not a class; {hint}")


def _is_empty(value: Any) -> bool:
    """An empty label cell: None, NaN (pandas' empty cell), or only whitespace and invisible characters."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    return isinstance(value, str) and not value.strip().strip(_INVISIBLE).strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
