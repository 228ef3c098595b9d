"""Who labels an active-learning query: the oracle.

An oracle gets each query (the pool rows a round picked) and either answers at once (`SimulatedOracle`: the labels
the pool already has) or hands the rows to people and answers later (`FileOracle`: ``pending/round_NNNN.{csv,jsonl}``
to fill in, read back with `FileOracle.collect`). `ActiveLearner` keeps the rounds and the state; what comes back
from people goes through one validator, `read_label_file`, so every way of labeling obeys the same rules.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, LabelError
from .io import atomic_directory, atomic_file


class Oracle:
    """The labeler of an active-learning run.

    `ask` receives a query: ``{"round": r, "indices": pool rows, "scores": ..., "record": ...}``. It returns the label
    ids of the rows when it knows them now, or ``None`` after handing the rows over (the run then stops, its state
    records the pending round, and a later `collect` answers it)."""

    name: str = ""
    answers_now: bool = True  # False: `ask` hands the query over and the run waits for `collect`

    def __init__(self, pool, task, folder: Path):
        self.pool, self.task, self.dir = pool, task, folder

    def ask(self, query: dict[str, Any]) -> np.ndarray | None:
        raise NotImplementedError

    def collect(self, answer: Any, round_index: int, indices: np.ndarray) -> np.ndarray:
        """The label ids of ``indices`` (in that order) from an answer to the pending round, validated."""
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
    `read_label_file`'s rules."""

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

    def collect(self, answer: Any, round_index: int, indices: np.ndarray) -> np.ndarray:
        return read_label_file(Path(answer), round_index, indices, self.task.label_names)


ORACLES: dict[str, type[Oracle]] = {"simulate": SimulatedOracle, "human": FileOracle}


def build_oracle(name: str, pool, task, folder: Path) -> Oracle:
    if name not in ORACLES:
        raise ConfigError(f"oracle must be one of {', '.join(repr(n) for n in ORACLES)}, got {name!r}")
    return ORACLES[name](pool, task, folder)


# -- the label-file validator ---------------------------------------------------------------------------------------
def read_label_file(path: Path, round_index: int, indices: np.ndarray, label_names) -> np.ndarray:
    """The label ids of ``indices`` from a filled ``pending/`` file, as spreadsheets and JSON tools write it: CSV
    (UTF-8 with or without a byte-order mark, any line endings) or JSON lines. A label is a class name (surrounding
    whitespace ignored) or a whole number (``2``, ``2.0``, ``"2"``): the class of that name when the classes are
    numbers (a pool with integer labels), else the class id, in the order of ``labeled/``'s ClassLabel. Every row
    must be one queried in ``round_index``, once; any problem raises `LabelError` naming the line."""
    if not path.is_file():
        raise LabelError(f"label file {path} does not exist")
    rows = _label_file_rows(path)
    label_names = list(label_names)
    names = {n: i for i, n in enumerate(label_names)}
    # ids are accepted unless a class is itself named by a number: "1" would then be ambiguous
    ids_allowed = not any(_whole_number(n) is not None for n in label_names)
    wanted = {int(i) for i in indices}
    got: dict[int, int] = {}
    for line_no, row in rows:
        row_round, idx = _whole_number(row.get("svp_round", round_index)), _whole_number(row.get("svp_pool_index"))
        if row_round is None or idx is None:
            raise LabelError(f"{path}:{line_no}: needs integer svp_pool_index and svp_round fields")
        if row_round != round_index:
            raise LabelError(f"{path}:{line_no}: the file is from round {row_round}, round {round_index} is pending")
        if idx not in wanted:
            raise LabelError(f"{path}:{line_no}: pool index {idx} was not queried in round {round_index}")
        if idx in got:
            raise LabelError(f"{path}:{line_no}: pool index {idx} is labeled twice")
        got[idx] = _label_id(row.get("label"), names, ids_allowed, f"{path}:{line_no}")
    missing = sorted(wanted - set(got))
    if missing:
        raise LabelError(f"{path}: {len(missing)} queried rows have no label, e.g. pool indices {missing[:5]}")
    return np.array([got[int(i)] for i in indices], dtype=np.int64)


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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
