"""Property-based checks (hypothesis): whatever pool, budget, labeled rows or label file a user brings, svp-hf either
gives a correct result or refuses with one typed `SvpError`, and leaves nothing behind when it refuses.

Generated: pools of 0-60 rows (texts that are words, None, empty, whitespace or zero-width characters only; text
columns of ints, floats, bools, lists or nulls, or none at all; labels as ClassLabel ids, ints, strings, whole and
fractional floats, digit strings mixed with names, all null or no label column; 1-5 classes), budgets (counts,
fractions, zero,
negative, too large, NaN, words), labeled-index lists (valid, repeated, out of range, floats, bools, strings) and, for
a pending human-oracle round, label files (CSV with or without a byte-order mark, CRLF, blank rows and any column
order; JSON lines; names, padded names, ids as ints, floats and strings; unknown classes, empty, fractional, negative
and out-of-range labels, duplicates, missing and unqueried rows, another round).

The default run is bounded (the ``ci`` profile, registered in conftest.py: a fixed, derandomized set of examples);
``HYPOTHESIS_PROFILE=slow`` runs every property here with many more examples, and ``pytest -m slow`` runs the
``*_many`` twins below, which always use the ``slow`` profile.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import math
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

import datasets
import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import svp_hf
from svp_hf.cli import main
from svp_hf.errors import (
    BudgetError,
    ColumnNotFoundError,
    ColumnTypeError,
    ConfigError,
    EmptyPoolError,
    LabelError,
    PoolExhaustedError,
    SvpError,
)

SLOW = settings.get_profile("slow")

WORDS = ["stocks", "match", "market", "team", "orbit", "vote", "rates", "goal", "probe", "senate"]
BLANKS = ["", " ", "\t\n", "\u200b", "\u200c\u200d", "\ufeff", "\u00a0\u3000", " \u200b\t", "\u2060\u00ad"]
CLASS_NAMES = ["World", "Sports", "Business", "Sci/Tech", "Other"]


# -- pools ----------------------------------------------------------------------------------------------------
@st.composite
def pools(draw, healthy: bool = False, all_labeled: bool = False):
    """``(dataset, blank, labeled)``: a pool, which rows carry no text (when its text column holds strings) and which
    rows have a label. A ``healthy`` pool has rows, a text column of strings and labels of 2-5 classes (some rows may
    still lack text, or a label unless ``all_labeled``)."""
    size = draw(st.sampled_from(["some"] if healthy else ["some", "some", "some", "few", "none"]))
    n = draw({"some": st.integers(6, 60), "few": st.integers(1, 5), "none": st.just(0)}[size])
    k = draw(st.sampled_from([2, 3, 4, 5] if healthy else [2, 3, 4, 5, 1]))
    text_kinds = ["str"] if healthy else ["str"] * 12 + ["int", "float", "list", "null", "bool", "missing"]
    text_kind = draw(st.sampled_from(text_kinds))
    columns, features = {}, {}
    blank = None
    if text_kind == "str":
        texts, blank = [], []
        for _ in range(n):
            kind = draw(st.sampled_from(["words"] * 4 + ["none", "blank"]))
            if kind == "words":
                texts.append(" ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))))
            else:
                texts.append(None if kind == "none" else draw(st.sampled_from(BLANKS)))
            blank.append(kind != "words")
        columns["text"], features["text"] = texts, datasets.Value("string")
    elif text_kind == "null":  # a column with no text at all (as a CSV of empty cells loads)
        columns["text"], features["text"], blank = [None] * n, datasets.Value("null"), [True] * n
    elif text_kind != "missing":
        value = {
            "int": st.integers(-5, 5),
            "float": st.floats(allow_nan=True),
            "bool": st.booleans(),
            "list": st.lists(st.sampled_from(WORDS), max_size=3),
        }[text_kind]
        columns["text"] = [draw(st.one_of(st.none(), value)) for _ in range(n)]
        features["text"] = {
            "int": datasets.Value("int64"),
            "float": datasets.Value("float64"),
            "bool": datasets.Value("bool"),
            "list": datasets.Sequence(datasets.Value("string")),
        }[text_kind]

    label_kinds = ["class_label", "int", "str", "float", "mixed"]
    label_kind = draw(
        st.sampled_from(label_kinds if healthy else [*label_kinds, "str", "fraction", "null", "missing"])
    )
    missing = st.just(False) if all_labeled else st.sampled_from([True] + [False] * 5)  # a row without a label
    ids = [None if draw(missing) else draw(st.integers(0, k - 1)) for _ in range(n)]
    if label_kind == "class_label":
        columns["label"], features["label"] = ids, datasets.ClassLabel(names=CLASS_NAMES[:k])
    elif label_kind == "int":
        values = draw(st.lists(st.integers(0, 9), min_size=k, max_size=k, unique=True))
        columns["label"] = [None if i is None else values[i] for i in ids]
        features["label"] = datasets.Value("int64")
    elif label_kind == "str":
        columns["label"] = [draw(st.sampled_from([None, ""])) if i is None else CLASS_NAMES[i] for i in ids]
        features["label"] = datasets.Value("string")
    elif label_kind in ("float", "fraction"):
        step = 1.0 if label_kind == "float" else 0.5
        columns["label"] = [draw(st.sampled_from([None, math.nan])) if i is None else i * step for i in ids]
        features["label"] = datasets.Value("float64")
    elif label_kind == "mixed":  # names and digit strings in one column, as a spreadsheet export may give
        names = ["0", "1", "World", "2", "Sports"][:k]
        columns["label"] = [None if i is None else names[i] for i in ids]
        features["label"] = datasets.Value("string")
    elif label_kind == "null":
        columns["label"], features["label"] = [None] * n, datasets.Value("null")
    pool = datasets.Dataset.from_dict(columns, features=datasets.Features(features) if features else None)
    has_label = [i is not None and label_kind not in ("null", "missing") for i in ids]
    return pool, blank, has_label


@st.composite
def budgets(draw):
    """Mostly budgets that may fit (counts, fractions, percentages), else ones that never do."""
    kind = draw(st.sampled_from(["count", "count", "fraction", "fraction", "text", "bad count", "bad other"]))
    if kind == "count":
        return draw(st.integers(1, 12))
    if kind == "fraction":
        return draw(st.sampled_from([0.1, 0.25, 0.5, 0.999, 1.0, 1e-6]))
    if kind == "text":
        return draw(st.sampled_from(["10%", "50%", "100%", "3", "0.5"]))
    if kind == "bad count":
        return draw(st.sampled_from([0, -1, -3, 61, 1000]))
    return draw(st.sampled_from([0.0, -0.5, 1.5, 2.0, math.nan, math.inf, "0%", "0", "-1", "ten", "", "1e400"]))


@st.composite
def labeled_lists(draw, n: int, healthy: bool = False):
    """``None`` (core-set mode) or a list of labeled rows: valid or not (repeated, out of range, not integers)."""
    kinds = (
        ["valid"] if healthy else ["none"] * 3 + ["valid"] * 4 + ["empty", "repeat", "range", "float", "bool", "str"]
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    rows = draw(st.lists(st.integers(0, n - 1), unique=True, min_size=min(n, 2), max_size=max(n // 2, 2))) if n else []
    if kind == "empty":
        return []
    if kind == "repeat" and rows:
        return [*rows, rows[0]]
    if kind == "range":
        return [*rows, draw(st.sampled_from([-1, n, n + 7]))]
    if kind == "float":
        return [*rows, draw(st.sampled_from([0.5, 2.5, 1.0]))]
    if kind == "bool":
        return [*rows, True]
    if kind == "str":
        return [*rows, "3"]
    return rows


def expected_count(budget, n: int, available: int) -> int | None:
    """How many rows a correct selection returns, from the README's budget rules; None where it must be refused."""
    if isinstance(budget, str):
        text = budget.strip()
        try:
            budget = (
                float(text[:-1]) / 100
                if text.endswith("%")
                else int(text)
                if text.lstrip("-").isdigit()
                else float(text)
            )
        except ValueError:
            return None
    if isinstance(budget, float):
        if not math.isfinite(budget) or budget <= 0 or budget > 1:
            return None
        count = math.floor(budget * n + 0.5)
    else:
        if budget <= 0 or budget > n:
            return None
        count = budget
    return count if 0 < count <= available else None


def valid_labeled(labeled, n: int) -> bool:
    return labeled is None or (
        all(type(i) is int for i in labeled) and len(set(labeled)) == len(labeled) and all(0 <= i < n for i in labeled)
    )


def check_selection(indices, dataset, count, labeled, blank):
    """A correct result: exactly ``count`` rows, each once, none labeled, none without text, in the dataset's order."""
    indices = [int(i) for i in indices]
    assert len(indices) == count
    assert len(set(indices)) == count
    assert not set(indices) & set(labeled or [])
    assert not any(blank[i] for i in indices)
    assert dataset.num_rows == count and dataset["svp_pool_index"] == indices
    assert dataset["svp_rank"] == list(range(count))


# -- svp_hf.select ----------------------------------------------------------------------------------------------
def _select(pool, strategy, budget, labeled, seed=0):
    return svp_hf.select(
        pool,
        proxy="tfidf",
        proxy_kwargs={"self_check": False},
        strategy=strategy,
        budget=budget,
        seed=seed,
        labeled_indices=labeled,
    )


@st.composite
def select_cases(draw):
    """Half are healthy requests (a text pool with labels, valid labeled rows, a budget that fits the rows left), half
    anything at all."""
    healthy, core = draw(st.booleans()), draw(st.booleans())
    pool, blank, has_label = draw(pools(healthy, all_labeled=healthy and core))
    strategy = draw(st.sampled_from(["margin", "random"]))
    labeled = None if healthy and core else draw(labeled_lists(pool.num_rows, healthy))
    if healthy and labeled:  # the proxy trains on labeled rows: give them labels (the other rows may have none)
        labeled = [i for i in labeled if has_label[i]]
    if not healthy:
        return pool, blank, strategy, draw(budgets()), labeled
    available = sum(1 for i, b in enumerate(blank) if not b and i not in set(labeled or []))
    if available == 0:
        return pool, blank, strategy, draw(budgets()), labeled
    fractions = [f for f in (0.1, 0.25, 0.5, 1.0) if 0 < math.floor(f * pool.num_rows + 0.5) <= available]
    budget = draw(st.one_of(st.integers(1, available), st.sampled_from(fractions or [1])))
    return pool, blank, strategy, budget, labeled


def check_select_api(case):
    pool, blank, strategy, budget, labeled = case
    try:
        result = _select(pool, strategy, budget, labeled)
    except SvpError as err:
        outcome = err
    else:
        outcome = None
    n = pool.num_rows
    available = None
    if blank is not None and valid_labeled(labeled, n):
        available = sum(1 for i in range(n) if not blank[i] and i not in set(labeled or []))
    count = expected_count(budget, n, available if available is not None else n)

    event(f"{strategy}: {'selected' if outcome is None else type(outcome).__name__}")
    if outcome is None:
        assert blank is not None, "a pool without a text column of strings was accepted"
        assert valid_labeled(labeled, n) and count is not None
        check_selection(result.indices, result.dataset, count, labeled, blank)
        assert result.dataset.column_names == [*pool.column_names, "svp_pool_index", "svp_score", "svp_rank"]
        again = _select(pool, strategy, budget, labeled)  # determinism under a seed
        assert again.indices.tolist() == result.indices.tolist()
        return
    # refused: with the type the cause calls for, in the order select() checks (README: budget rules, empty pools,
    # labeled rows, the pool's size)
    text_ok = blank is not None
    if expected_count(budget, 10**6, 10**6) is None:  # no pool makes this a budget
        assert isinstance(outcome, BudgetError), repr(outcome)
    elif n == 0:
        assert isinstance(outcome, EmptyPoolError), repr(outcome)
    elif not text_ok:
        assert isinstance(outcome, (ColumnNotFoundError, ColumnTypeError)), repr(outcome)
    elif not valid_labeled(labeled, n):
        assert isinstance(outcome, ConfigError), repr(outcome)
    elif expected_count(budget, n, n) is None:  # rounds to 0 rows, or more rows than the pool holds
        assert isinstance(outcome, BudgetError) and not isinstance(outcome, PoolExhaustedError), repr(outcome)
    elif count is None:
        assert isinstance(outcome, PoolExhaustedError), repr(outcome)
    else:  # random needs no labels and trains nothing: a text pool, valid rows and a budget that fits always work
        assert strategy != "random", f"random selection refused a valid request: {outcome!r}"


test_select_gives_a_correct_result_or_one_typed_error = given(select_cases())(check_select_api)
test_select_gives_a_correct_result_or_one_typed_error_many = pytest.mark.slow(
    settings(SLOW)(given(select_cases())(check_select_api))
)


# -- svp-hf select (in-process) ---------------------------------------------------------------------------------
@st.composite
def cli_cases(draw):
    pool, blank, strategy, budget, labeled = draw(select_cases())
    fmt = draw(st.sampled_from(["save_to_disk", "save_to_disk", "parquet", "jsonl"]))
    indices_fmt = draw(st.sampled_from(["json", "words"]))
    where = draw(st.sampled_from(["new", "new", "nested", "taken"]))  # nested: under folders that do not exist yet
    return pool, blank, strategy, budget, labeled, fmt, indices_fmt, where


def _write_pool(pool, folder: Path, fmt: str) -> Path:
    if fmt == "save_to_disk":
        pool.save_to_disk(str(folder / "pool"))
        return folder / "pool"
    (folder / "pool").mkdir()
    if fmt == "parquet":
        pool.to_parquet(str(folder / "pool" / "train.parquet"))
    else:
        pool.to_json(str(folder / "pool" / "train.jsonl"))
    return folder / "pool"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check_select_cli(case):
    pool, blank, strategy, budget, labeled, fmt, indices_fmt, where = case
    with tempfile.TemporaryDirectory(prefix="svp_prop_") as tmp, _captured() as streams:
        tmp = Path(tmp)
        source = _write_pool(pool, tmp, fmt)
        source_files = _tree(source)
        out = tmp / "new" / "deeper" / "out" if where == "nested" else tmp / "out"
        if where == "taken":  # another run's result: never replaced without --overwrite
            out.mkdir()
            (out / "theirs.txt").write_text("keep")
        args = ["select", "--dataset", str(source), "--split", "train", "--proxy", "tfidf",
                "--proxy-kwargs", '{"self_check": false}', "--strategy", strategy, "--budget", str(budget),
                "--output-dir", str(out), "--quiet"]  # fmt: skip
        if labeled is not None:
            text = json.dumps(labeled) if indices_fmt == "json" else " ".join(map(str, labeled))
            if indices_fmt == "words":  # "3" reads as the row 3 there
                labeled = [int(i) if isinstance(i, str) else i for i in labeled]
            (tmp / "labeled.txt").write_text(text)
            args += ["--labeled-indices", str(tmp / "labeled.txt")]
        try:
            code = main(args)
        except SystemExit as exit:  # argparse's own usage errors
            code = exit.code
        stdout, stderr = streams()

        touched = _tree(source)
        assert touched.keys() == source_files.keys() and all(touched[k] == source_files[k] for k in touched), sorted(
            k for k in touched if touched[k] != source_files.get(k)
        )  # the input is never touched
        around = out.parent.iterdir() if out.parent.exists() else []
        leftovers = sorted(p.name for p in around if p.name.startswith(f".{out.name}."))
        assert leftovers == [], leftovers  # no .out.tmp-*, .out.lock, .out.old-*
        # what the Python API says about the same rows, as the command loaded them (settings checked first, as there)
        loaded = None
        try:
            svp_hf.SelectionConfig(proxy="tfidf", strategy=strategy, budget=str(budget))
            loaded = svp_hf.load_pool(source, "train")
            api = _select(loaded, strategy, str(budget), labeled)
        except SvpError as err:
            api = err
        if loaded is not None and loaded.features.get("text") in (datasets.Value("string"), datasets.Value("null")):
            blank = [t is None or not t.strip("".join(BLANKS)) for t in loaded["text"]]  # as written and read back
        event(f"{strategy}: {'selected' if code == 0 else type(api).__name__ if code == 1 else 'usage error'}")
        if code == 0:
            assert where != "taken", "another run's output folder was replaced without --overwrite"
            assert not isinstance(api, SvpError), f"the CLI accepted what the API refuses: {api!r}"
            written = datasets.load_from_disk(str(out))
            check_selection(written["svp_pool_index"], written, len(api.indices), labeled, blank)
            assert written["svp_pool_index"] == api.indices.tolist()
            assert f"Selected {len(api.indices)} of {pool.num_rows} rows" in stdout
            assert sorted(p.name for p in out.iterdir()) == [
                "README.md", "data-00000-of-00001.arrow", "dataset_info.json", "selection_config.json",
                "state.json", "svp_pool_scores.npy",
            ]  # fmt: skip
            return
        errors = [line for line in stderr.splitlines() if re.match(r"svp-hf( [a-z-]+)?: error: ", line)]
        assert code in (1, 2) and len(errors) == 1 and errors == stderr.strip().splitlines()[-1:], stderr
        assert "rerun with --debug" not in stderr, f"an untyped error: {stderr}"  # an SvpError, not a crash
        assert "Traceback" not in stderr
        assert not (tmp / "new").exists()
        if where == "taken":  # refused (for that or another reason), and the folder is as it was
            assert (
                sorted(p.name for p in out.iterdir()) == ["theirs.txt"] and (out / "theirs.txt").read_text() == "keep"
            )
            assert isinstance(api, SvpError) or "already exists; choose another or pass --overwrite" in errors[0]
            return
        assert not out.exists()
        if isinstance(api, SvpError) and code == 1 and "--labeled-indices" not in errors[0]:
            assert str(api) in errors[0]  # the same refusal, word for word
        elif not isinstance(api, SvpError):
            pytest.fail(f"the CLI refused what the API accepts: {errors[0]}")


@contextlib.contextmanager
def _captured():
    """stdout and stderr of an in-process CLI call (the CLI's logging writes to the sys.stderr of the moment)."""
    import sys

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        yield lambda: (out.getvalue(), err.getvalue())
    finally:
        sys.stdout, sys.stderr = old


test_cli_select_gives_a_correct_result_or_one_line_and_no_output = given(cli_cases())(check_select_cli)
test_cli_select_gives_a_correct_result_or_one_line_and_no_output_many = pytest.mark.slow(
    settings(SLOW)(given(cli_cases())(check_select_cli))
)


# -- label files for a pending human-oracle round ---------------------------------------------------------------
@cache
def _pending_template(kind: str) -> tuple[Path, datasets.Dataset]:
    """A human-oracle run whose round 0 (12 random rows of a 60-row pool) waits for labels; made once per session
    and copied for each example. ``kind``: "names" (a ClassLabel of four names) or "ints" (integer labels 0-3)."""
    texts = [f"{WORDS[i % 10]} {WORDS[(3 * i) % 10]} report {i}" for i in range(60)]
    labels = [i % 4 for i in range(60)]
    if kind == "names":
        features = datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=CLASS_NAMES[:4])}
        )
    else:
        features = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
    pool = datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)
    folder = Path(tempfile.mkdtemp(prefix=f"svp_prop_pending_{kind}_")) / "al"
    atexit.register(shutil.rmtree, folder.parent, True)
    svp_hf.ActiveLearner(pool, folder, _human_config(), oracle="human").run()
    return folder, pool


def _human_config():
    return svp_hf.ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=12, budgets=[24], batch_size=None)


# (cell, class id it means or None when it must be refused); {c} is the class id, {name} its name
CELLS = {
    "name": lambda c, names: (names[c], c),
    "padded name": lambda c, names: (f" \u200b{names[c]}\u00a0\t", c),
    "id": lambda c, names: (c, c),
    "whole float id": lambda c, names: (float(c), c),
    "id as text": lambda c, names: (f" {c}.0 ", c),
    "unknown class": lambda c, names: ("Weather", None),
    "lower-case name": lambda c, names: (names[c].lower(), None if names[c].lower() != names[c] else c),
    "empty": lambda c, names: ("", None),
    "null": lambda c, names: (None, None),
    "nan": lambda c, names: (math.nan, None),
    "fraction": lambda c, names: (c + 0.5, None),
    "negative": lambda c, names: (-1, None),
    "out of range": lambda c, names: (7, None),
    "list": lambda c, names: ([names[c]], None),
    "bool": lambda c, names: (True, None),
}
FILE_EDITS = {  # edit: whether the file stays valid
    "none": True, "shuffle": True, "no round column": True, "no text column": True, "blank rows": True,
    "duplicate": False, "missing row": False, "unqueried row": False, "other round": False,
}  # fmt: skip


@st.composite
def label_files(draw):
    kind = draw(st.sampled_from(["names", "ints"]))
    fmt = draw(st.sampled_from(["csv", "jsonl"]))
    bom, crlf = draw(st.booleans()), draw(st.booleans())
    good = st.sampled_from(["name", "padded name", "id", "whole float id", "id as text"])
    cells = draw(st.lists(good, min_size=12, max_size=12))
    classes = draw(st.lists(st.integers(0, 3), min_size=12, max_size=12))
    faults = draw(st.sampled_from(["none", "none", "cell", "edit", "several"]))  # mostly files with one fault or none
    edit = "none"
    if faults in ("cell", "several"):
        for _ in range(1 if faults == "cell" else draw(st.integers(2, 4))):
            cells[draw(st.integers(0, 11))] = draw(st.sampled_from(sorted(CELLS)))
    if faults in ("edit", "several"):
        edit = draw(st.sampled_from(sorted(FILE_EDITS)))
    elif faults == "none":
        edit = draw(st.sampled_from(sorted(k for k, ok in FILE_EDITS.items() if ok)))
    order = draw(st.permutations(["svp_round", "svp_pool_index", "text", "label"]))
    seed = draw(st.integers(0, 2**16))
    return kind, fmt, bom, crlf, cells, classes, edit, order, seed


def check_label_file(case):
    kind, fmt, bom, crlf, cells, classes, edit, order, seed = case
    template, pool = _pending_template(kind)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="svp_prop_labels_") as tmp:
        out = Path(tmp) / "al"
        shutil.copytree(template, out)
        learner = svp_hf.ActiveLearner(pool, out, _human_config(), oracle="human")
        rows = [json.loads(line) for line in (out / "pending" / "round_0000.jsonl").read_text().splitlines()]
        assert len(rows) == 12
        names = CLASS_NAMES[:4] if kind == "names" else ["0", "1", "2", "3"]
        expected, valid = {}, FILE_EDITS[edit]
        for row, cell, c in zip(rows, cells, classes):
            value, means = CELLS[cell](c, names)
            if kind == "ints" and cell == "unknown class":
                value = "9"
            if fmt == "csv" and cell == "nan":
                value = "NaN"  # a spreadsheet's word for nothing: not a class
            row["label"] = value
            expected[row["svp_pool_index"]] = means
            valid = valid and means is not None
        queried = [r["svp_pool_index"] for r in rows]
        if edit == "shuffle":
            rows = [rows[i] for i in rng.permutation(len(rows))]
        elif edit == "duplicate":
            rows.append(dict(rows[int(rng.integers(len(rows)))]))
        elif edit == "missing row":
            rows.pop(int(rng.integers(len(rows))))
        elif edit == "unqueried row":
            other = next(i for i in rng.permutation(60).tolist() if i not in queried)
            rows.append({**rows[0], "svp_pool_index": other})
        elif edit == "other round":
            rows[int(rng.integers(len(rows)))]["svp_round"] = 1
        elif edit in ("no round column", "no text column"):
            drop = "svp_round" if edit == "no round column" else "text"
            rows = [{k: v for k, v in r.items() if k != drop} for r in rows]
        fields = [f for f in order if any(f in r for r in rows)]

        path = Path(tmp) / f"labels.{fmt}"
        newline = "\r\n" if crlf else "\n"
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator=newline)
            writer.writeheader()
            for i, row in enumerate(rows):
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
                if edit == "blank rows" and i % 5 == 0:
                    writer.writerow({})
            text = buffer.getvalue()
        else:
            text = "".join(json.dumps({k: r[k] for k in fields if k in r}) + newline for r in rows)
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))

        before = _tree(out)
        event(f"{fmt}: {'valid' if valid else 'invalid'}")
        try:
            state = learner.import_labels(path)
        except SvpError as err:
            assert isinstance(err, LabelError), repr(err)
            assert not valid, f"a valid label file was refused: {err}"
            assert _tree(out) == before  # nothing changed
            return
        assert valid, f"an invalid label file was accepted ({edit}, cells {cells})"
        assert state.completed_rounds == 1
        assert [int(i) for i in state.indices] == queried
        assert state.labels.tolist() == [expected[i] for i in queried]
        labeled = datasets.load_from_disk(str(out / "labeled"))
        assert labeled["svp_pool_index"] == queried and labeled["label"] == [expected[i] for i in queried]
        assert not list((out / "pending").glob("round_0000.*"))


test_label_files_commit_exactly_or_change_nothing = given(label_files())(check_label_file)
test_label_files_commit_exactly_or_change_nothing_many = pytest.mark.slow(
    settings(SLOW)(given(label_files())(check_label_file))
)


# -- regressions this suite found -------------------------------------------------------------------------------
def _one_line_failure(args) -> str:
    with _captured() as streams:
        code = main(args)
    stderr = streams()[1]
    assert code == 1 and len(stderr.strip().splitlines()) == 1 and "rerun with --debug" not in stderr, stderr
    return stderr


@pytest.mark.parametrize("values", [[1, 2, 3], [0.5, None, 2.0], [["a"], ["b"], []], [True, False, True]])
def test_a_text_column_of_other_values_is_a_column_type_error(tmp_path, values):
    """Found by the properties above: a text column of numbers, lists or bools reached Arrow's string kernels, and
    `select` (and `svp-hf select`, as a two-part untyped line) failed with ArrowInvalid / ArrowNotImplementedError
    instead of naming the column. Random selection trained nothing, so no earlier check saw the column's type."""
    pool = datasets.Dataset.from_dict({"text": values, "label": [0, 1, 0]})
    for strategy in ("random", "margin"):
        with pytest.raises(ColumnTypeError, match="text column 'text' holds .*not strings; pass the column"):
            svp_hf.select(pool, proxy="tfidf", strategy=strategy, budget=1)
    pool.save_to_disk(str(tmp_path / "pool"))
    stderr = _one_line_failure(["select", "--dataset", str(tmp_path / "pool"), "--strategy", "random", "--budget", "1",
                                "--output-dir", str(tmp_path / "out")])  # fmt: skip
    assert "svp-hf: error: text column 'text' holds" in stderr and not (tmp_path / "out").exists()
    # a column with no text at all (every value null) is a pool without selectable rows, not a type error
    empty = datasets.Dataset.from_dict({"text": [None, None, None], "label": [0, 1, 0]})
    with pytest.raises(PoolExhaustedError, match="1 rows requested, 0 selectable rows left"):
        svp_hf.select(empty, strategy="random", budget=1)


@pytest.mark.parametrize("fmt", ["save_to_disk", "parquet", "jsonl"])
def test_a_pool_file_without_rows_is_an_empty_pool_error(tmp_path, fmt):
    """Found by the properties above: a dataset saved with no rows made `load_pool` fail with an IndexError (inside
    datasets.load_from_disk), an empty JSON-lines file with a bare StopIteration, and a zero-row Parquet file with
    'Instruction "train" corresponds to no data!' (a ValueError): untyped errors instead of "no rows"."""
    pool = datasets.Dataset.from_dict(
        {"text": [], "label": []},
        features=datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")}),
    )
    source = _write_pool(pool, tmp_path, fmt)
    if fmt == "save_to_disk":  # loads, as the 0-row dataset it is
        loaded = svp_hf.load_pool(source, "train")
        assert loaded.num_rows == 0 and loaded.column_names == ["text", "label"]
        with pytest.raises(EmptyPoolError, match="the pool has no rows"):
            svp_hf.select(loaded, strategy="random", budget=1)
    else:
        with pytest.raises(EmptyPoolError, match="has no rows"):
            svp_hf.load_pool(source, "train")
    stderr = _one_line_failure(["select", "--dataset", str(source), "--strategy", "random", "--budget", "1",
                                "--output-dir", str(tmp_path / "out")])  # fmt: skip
    assert "no rows" in stderr and not (tmp_path / "out").exists()


def test_labeled_indices_with_a_bool_are_refused_by_the_python_api_too():
    """Found by the properties above (issue 14, item 6 was fixed for the CLI only): numpy turned ``[0, True]`` into
    ``[0, 1]``, so `select` trained on row 1 that nobody had labeled."""
    pool = datasets.Dataset.from_dict({"text": [f"{WORDS[i % 10]} {WORDS[i % 7]}" for i in range(20)],
                                       "label": [i % 2 for i in range(20)]})  # fmt: skip
    for labeled in ([0, True], [5, 7, False], (3, np.bool_(True))):
        with pytest.raises(ConfigError, match="labeled_indices must be row numbers, got a bool"):
            svp_hf.select(pool, proxy="tfidf", strategy="margin", budget=2, labeled_indices=labeled)
    result = svp_hf.select(pool, strategy="random", budget=2, labeled_indices=np.array([0, 1]))  # arrays still work
    assert not {0, 1} & set(result.indices.tolist())


def test_selecting_from_a_saved_dataset_writes_nothing_into_it(tmp_path):
    """Found by the properties above: adding the provenance columns to ``pool.select(rows)`` applied the index
    mapping through datasets' cache, which writes ``cache-<fingerprint>.arrow`` beside the pool's Arrow files: every
    `svp-hf select --dataset SAVED_FOLDER` (and every oracle-labeled fit) left a file in the user's input folder."""
    pool = datasets.Dataset.from_dict({"text": [f"{WORDS[i % 10]} {WORDS[i % 7]}" for i in range(40)],
                                       "label": [i % 2 for i in range(40)]})  # fmt: skip
    pool.save_to_disk(str(tmp_path / "pool"))
    before = sorted(p.name for p in (tmp_path / "pool").iterdir())
    with _captured():
        assert main(["select", "--dataset", str(tmp_path / "pool"), "--proxy", "tfidf", "--strategy", "margin",
                     "--budget", "5", "--output-dir", str(tmp_path / "out"), "--quiet"]) == 0  # fmt: skip
    loaded = svp_hf.load_pool(tmp_path / "pool", "train")
    task = svp_hf.TextClassificationTask.from_dataset(loaded)
    svp_hf.select(loaded, proxy="tfidf", strategy="margin", budget=5, labeled_indices=list(range(10)),
                  labels=[i % 2 for i in range(10)], task=task)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "pool").iterdir()) == before
    assert datasets.load_from_disk(str(tmp_path / "out")).num_rows == 5
