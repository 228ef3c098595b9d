"""Loading pools, validating columns, mapping labels to ids, and turning budgets into row counts.

Everything here works on Arrow data in batches: a pool is never turned into Python lists as a whole.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import (
    BudgetError,
    ColumnNotFoundError,
    ColumnTypeError,
    ConfigError,
    DataFileError,
    DatasetNotFoundError,
    DatasetTypeError,
    EmptyPoolError,
    LabelError,
    PoolExhaustedError,
    SplitNotFoundError,
)

logger = logging.getLogger(__name__)

DATA_FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json"}
_SPLIT = re.compile(r"^\s*([\w.-]+)\s*(\[.*\])?\s*$")


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------
def load_pool(source: str | os.PathLike, split: str = "train", **load_kwargs: Any):
    """Load one split of a dataset as a `datasets.Dataset`.

    Args:
        source (`str` or `os.PathLike`):
            A Hub id (``"ag_news"``), a local folder of parquet/csv/jsonl files (split names come from the file
            names: ``train.parquet``, ``test-00000-of-00001.parquet``), a single data file, or a folder written by
            ``save_to_disk`` (a `Dataset` or a `DatasetDict`).
        split (`str`, defaults to `"train"`):
            The split, with the `datasets` slicing syntax: ``"train[:2000]"``, ``"train[10%:20%]"``.
        load_kwargs:
            Passed to `datasets.load_dataset` (e.g. ``revision``, ``cache_dir``). ``trust_remote_code`` is never set.
    """
    import datasets

    path = Path(os.fspath(source)).expanduser()
    if path.exists():
        if path.is_file():
            builder = DATA_FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise DatasetNotFoundError(
                    f"{source}: unsupported file type {path.suffix!r}; use parquet, csv, tsv, json or jsonl"
                )
            extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
            return _load(source, split, builder, data_files={_split_name(split): str(path)}, **extra, **load_kwargs)
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return _load_saved(path, split)
        return _load(source, split, str(path), **load_kwargs)

    if _looks_like_path(str(source)):
        raise DatasetNotFoundError(f"no such file or directory: {source!r}; pass an existing folder or a Hub id")
    try:
        return _from_hub(_load(source, split, str(source), **load_kwargs), source)
    except (SplitNotFoundError, DatasetTypeError, DatasetNotFoundError):
        raise
    except (ConnectionError, OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
        raise DatasetNotFoundError(
            f"could not load {str(source)!r} from the Hugging Face Hub ({type(err).__name__}: {_first_line(err)}); "
            "check the id and your network, or pass a local folder"
        ) from err


def _load(source, split: str, builder: str, **kwargs):
    import datasets

    try:
        return datasets.load_dataset(builder, split=split, **kwargs)
    except pa.ArrowInvalid as err:  # a file that is not what its name says (truncated, another format)
        raise DataFileError(f"could not read {source} ({_first_line(err)}); check the file's format") from err
    except ValueError as err:
        msg = str(err)
        if "corresponds to no data" in msg:  # a data file without rows (or a slice of none)
            raise EmptyPoolError(f"{source}: split {split!r} has no rows; check the data files and the split") from err
        if (
            "Unknown split" in msg
            or "Bad split" in msg
            or "split" in msg.lower()
            and "should be one of" in msg.lower()
        ):
            raise SplitNotFoundError(f"split {split!r} not found in {source}: {_first_line(err)}") from err
        raise
    except FileNotFoundError as err:
        raise DatasetNotFoundError(
            f"{source}: {_first_line(err)}; a folder needs parquet, csv or jsonl files (or a save_to_disk folder)"
        ) from err
    except StopIteration as err:  # the json builder, inferring the columns of a file without a single row
        raise EmptyPoolError(f"{source}: split {split!r} has no rows (an empty data file); add rows") from err
    except datasets.exceptions.DatasetGenerationError as err:  # "An error occurred ...": say what it was
        cause = err
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        if "BatchSize must be greater than 0" in str(cause):  # pyarrow on a Parquet file of zero rows
            raise EmptyPoolError(f"{source}: split {split!r} has no rows (an empty data file); add rows") from err
        raise DataFileError(
            f"could not read {source} ({type(cause).__name__}: {_first_line(cause)}); check the file's format"
        ) from err


_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _from_hub(ds, source):
    """Refuse what `datasets` found in its cache under ``source``'s name when it did not come from the Hub.

    Offline (or with the Hub unreachable) `datasets.load_dataset("src")` falls back to the newest cache entry named
    ``src``, and a local folder ``src/`` loaded earlier from anywhere is cached under that very name: its rows would
    come back as if they were the Hub's. Hub datasets are cached under the repository's commit hash (40 hex digits),
    local folders under a hash of their files, so the folder name tells them apart."""
    for cache in ds.cache_files or ():
        version = Path(cache["filename"]).parent.name
        if not _COMMIT.match(version):
            raise DatasetNotFoundError(
                f"no file or folder {str(source)!r} in {Path.cwd()}, and {str(source)!r} could not be loaded from the "
                "Hugging Face Hub; the datasets cache holds an entry of that name made from a local folder elsewhere, "
                "which is not used in its place: pass the path of the folder you mean"
            )
    return ds


def _load_saved(path: Path, split: str):
    """A ``save_to_disk`` folder: pick the split by name, then apply the slice."""
    import datasets

    name = _split_name(split)
    if (path / "state.json").exists() and not json.loads((path / "state.json").read_text()).get("_data_files"):
        # a Dataset saved with no rows has no Arrow file, and datasets.load_from_disk fails on it with an IndexError
        info = datasets.DatasetInfo.from_directory(str(path))
        return datasets.Dataset.from_dict({k: [] for k in info.features or {}}, features=info.features, info=info)
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if name not in loaded:
            raise SplitNotFoundError(f"split {name!r} not found in {path}; available splits: {', '.join(loaded)}")
        ds = loaded[name]
    else:
        ds = loaded
        recorded = str(ds.split) if ds.split is not None else None
        if recorded and name != recorded and name != "train":
            logger.warning("%s holds a single dataset (split %r); ignoring split name %r", path, recorded, name)
    return _apply_slice(ds, split, name)


def _apply_slice(ds, split: str, name: str):
    import datasets

    if "[" not in split:
        return ds
    try:
        spec = split.replace(split.split("[", 1)[0], name, 1)
        (instruction,) = datasets.ReadInstruction.from_spec(spec).to_absolute({name: ds.num_rows})
    except (ValueError, AssertionError) as err:
        raise SplitNotFoundError(
            f"bad split {split!r}: {_first_line(err)} (examples: 'train', 'train[:2000]')"
        ) from err
    return ds.select(range(instruction.from_, instruction.to))


def _split_name(split: str) -> str:
    m = _SPLIT.match(split or "")
    if not m:
        raise SplitNotFoundError(f"bad split {split!r}; examples: 'train', 'train[:2000]', 'test[10%:]'")
    return m.group(1)


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or os.sep != "/"
        and os.sep in source
        or Path(source).suffix.lower() in DATA_FILE_BUILDERS
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------
def ensure_dataset(obj: Any, what: str = "pool"):
    """Return ``obj`` if it is a `datasets.Dataset`, else raise an error that names the fix."""
    import datasets

    if isinstance(obj, datasets.Dataset):
        return obj
    if isinstance(obj, datasets.DatasetDict):
        splits = list(obj)
        pick = "train" if "train" in splits else (splits[0] if splits else "train")
        raise DatasetTypeError(
            f"expected a datasets.Dataset as the {what}, got a DatasetDict with splits {splits}; "
            f"did you mean {what}[{pick!r}]?"
        )
    if isinstance(obj, (datasets.IterableDataset, datasets.IterableDatasetDict)):
        raise DatasetTypeError(
            f"the {what} is a streaming (iterable) dataset; selection needs random access to rows: "
            "load it without streaming=True"
        )
    if type(obj).__name__ == "DataFrame":
        raise DatasetTypeError(f"the {what} is a pandas DataFrame; convert it with datasets.Dataset.from_pandas(df)")
    raise DatasetTypeError(f"expected a datasets.Dataset as the {what}, got {type(obj).__name__}")


def check_column(ds, column: str, role: str, flag: str) -> None:
    if column not in ds.column_names:
        raise ColumnNotFoundError(
            f"{role} column {column!r} not found; the dataset has columns: {', '.join(ds.column_names)}. "
            f"Pass {flag} NAME"
        )


# --------------------------------------------------------------------------------------------------------------
# The task: which columns hold the inputs and labels, and the label <-> id mapping
# --------------------------------------------------------------------------------------------------------------
class ClassificationTask:
    """The label half of a task, shared by every input kind: the label <-> id mapping and label encoding.

    Labels are mapped to ids ``0 .. num_labels-1`` once, over the whole pool, so that every proxy's
    ``predict_proba`` columns mean the same classes, including classes missing from a small labeled set:

    - a `ClassLabel` column keeps its ids and names (``-1`` means "no label");
    - integer labels are mapped in ascending order of value (``0..C-1`` stays as it is), named by their value;
    - string labels are mapped in sorted order, named by themselves (an empty string means "no label").

    Subclasses are frozen dataclasses with the fields ``label_names``, ``label_column``, ``label_kind`` and
    ``label_values``, plus the column(s) holding their inputs; ``modality`` and ``input_column`` name those.
    Use `task_from_dataset` (or a subclass's ``from_dataset``) to build one.
    """

    modality: ClassVar[str]
    label_names: tuple[str, ...]
    label_column: str
    label_kind: str  # "class_label" | "int" | "str"
    label_values: tuple[Any, ...] | None  # raw values for "int"/"str", in id order

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def input_column(self) -> str:
        raise NotImplementedError

    @staticmethod
    def infer_labels(ds, label_column: str) -> tuple[tuple[str, ...], str, tuple[Any, ...] | None]:
        """``(label_names, label_kind, label_values)`` of ``ds[label_column]`` (at least two classes)."""
        import datasets

        check_column(ds, label_column, "label", "--label-column")
        feature = ds.features[label_column]
        if isinstance(feature, datasets.ClassLabel):
            names = tuple(feature.names)
            kind, values = "class_label", None
        elif isinstance(feature, datasets.Value):
            column = _column(ds, label_column)
            kind, values = _label_kind(column, label_column, feature)
            names = tuple(str(v) for v in values)
        else:
            raise LabelError(
                f"label column {label_column!r} holds {feature}; use integer, string or ClassLabel labels "
                "(one label per row)"
            )
        if len(names) < 2:
            raise LabelError(
                f"label column {label_column!r} has {len(names)} class(es) {list(names)}; selection needs at least 2"
            )
        return names, kind, values

    # -- labels ----------------------------------------------------------------------------------------------
    def encode_labels(self, ds) -> np.ndarray:
        """Label ids of every row as int64, ``-1`` where a row has no label."""
        column = _column(ds, self.label_column)
        if self.label_kind == "class_label":
            ids = column.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            bad = (ids < -1) | (ids >= self.num_labels)
            if bad.any():
                raise LabelError(f"label ids {sorted(set(ids[bad].tolist()))[:5]} are outside the ClassLabel range")
            return ids
        if self.label_kind == "str":
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
        else:
            column = _as_int(column, self.label_column)
        value_set = pa.array(list(self.label_values), type=column.type)
        ids = pc.index_in(column, value_set=value_set)
        unknown = pc.and_(pc.is_null(ids), pc.is_valid(column))
        if pc.any(unknown).as_py():
            examples = pc.unique(pc.filter(column, unknown)).to_pylist()[:5]
            raise LabelError(f"labels {examples} are not classes of this task ({list(self.label_names)})")
        return ids.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def labels_for_training(self, ds) -> np.ndarray:
        """Label ids of rows a proxy trains on: every row must have one."""
        ids = self.encode_labels(ds)
        missing = int((ids < 0).sum())
        if missing:
            raise LabelError(
                f"{missing} of {len(ids)} training rows have no label in column {self.label_column!r}; "
                "label them or leave them out of the labeled set"
            )
        return ids

    def with_label_column(self, label_column: str) -> ClassificationTask:
        """The same task with labels as ClassLabel ids in ``label_column`` (e.g. labels given by an oracle)."""
        return dataclasses.replace(self, label_column=label_column, label_kind="class_label", label_values=None)

    def empty_input_mask(self, ds) -> np.ndarray:
        """True for rows whose input carries nothing (no text, no image): never selected, never trained on."""
        raise NotImplementedError

    # -- (de)serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["label_names"] = list(self.label_names)
        out["label_values"] = list(self.label_values) if self.label_values is not None else None
        if self.modality != "text":  # text tasks keep the layout saved proxies already have
            out["modality"] = self.modality
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassificationTask:
        task_cls = TASKS.get(d.get("modality", "text"))
        if task_cls is None:
            raise ConfigError(f"unknown task modality {d.get('modality')!r}; known: {', '.join(TASKS)}")
        if cls is not ClassificationTask and not issubclass(task_cls, cls):
            raise ConfigError(f"a saved {task_cls.modality} task is not a {cls.__name__}")
        values = {f.name: d[f.name] for f in dataclasses.fields(task_cls) if f.name in d}
        values["label_names"] = tuple(values["label_names"])
        if values.get("label_values") is not None:
            values["label_values"] = tuple(values["label_values"])
        return task_cls(**values)


@dataclass(frozen=True)
class TextClassificationTask(ClassificationTask):
    """What a proxy needs to know about a text-classification pool: the text and label columns and the label
    mapping (see `ClassificationTask`). Use `TextClassificationTask.from_dataset` to build one."""

    modality: ClassVar[str] = "text"
    label_names: tuple[str, ...]
    text_column: str = "text"
    label_column: str = "label"
    label_kind: str = "class_label"  # "class_label" | "int" | "str"
    label_values: tuple[Any, ...] | None = field(default=None)  # raw values for "int"/"str", in id order

    @property
    def input_column(self) -> str:
        return self.text_column

    @classmethod
    def from_dataset(cls, ds, text_column: str = "text", label_column: str = "label") -> TextClassificationTask:
        import datasets

        ds = ensure_dataset(ds)
        check_column(ds, text_column, "text", "--text-column")
        text_feature = ds.features[text_column]
        if not (isinstance(text_feature, datasets.Value) and text_feature.dtype in ("string", "large_string")):
            hint = (
                f"; it holds images: pass --image-column {text_column} (and an image proxy such as timm)"
                if isinstance(text_feature, datasets.Image)
                else ""
            )
            raise ColumnTypeError(
                f"text column {text_column!r} holds {text_feature}, not strings; pass the column with the text "
                f"as --text-column{hint}"
            )
        names, kind, values = cls.infer_labels(ds, label_column)
        return cls(names, text_column, label_column, kind, values)

    def iter_texts(self, ds, batch_size: int = 8192, max_words: int | None = None) -> Iterator[pa.Array]:
        """The text column in Arrow batches, nulls as empty strings; with ``max_words``, each text cut to its first
        ``max_words`` words (see `first_words`)."""
        for batch in iter_text_batches(ds, self.text_column, batch_size):
            yield batch if max_words is None else first_words(batch, max_words)

    def empty_input_mask(self, ds) -> np.ndarray:
        return empty_text_mask(ds, self.text_column)


@dataclass(frozen=True)
class ImageClassificationTask(ClassificationTask):
    """What a proxy needs to know about an image-classification pool: the image column (a `datasets.Image`
    feature: PIL images, or ``{"bytes", "path"}`` structs), the label column and the label mapping (see
    `ClassificationTask`). Use `ImageClassificationTask.from_dataset` to build one."""

    modality: ClassVar[str] = "image"
    label_names: tuple[str, ...]
    image_column: str = "image"
    label_column: str = "label"
    label_kind: str = "class_label"
    label_values: tuple[Any, ...] | None = field(default=None)

    @property
    def input_column(self) -> str:
        return self.image_column

    @classmethod
    def from_dataset(cls, ds, image_column: str = "image", label_column: str = "label") -> ImageClassificationTask:
        ds = ensure_dataset(ds)
        check_image_column(ds, image_column)
        names, kind, values = cls.infer_labels(ds, label_column)
        return cls(names, image_column=image_column, label_column=label_column, label_kind=kind, label_values=values)

    def empty_input_mask(self, ds) -> np.ndarray:
        return empty_image_mask(ds, self.image_column)


TASKS: dict[str, type[ClassificationTask]] = {"text": TextClassificationTask, "image": ImageClassificationTask}


def check_image_column(ds, column: str) -> None:
    """The image column exists and holds a `datasets.Image` feature; else an error that names the fix."""
    import datasets

    check_column(ds, column, "image", "--image-column")
    feature = ds.features[column]
    if not isinstance(feature, datasets.Image):
        images = [n for n, f in ds.features.items() if isinstance(f, datasets.Image)]
        hint = f"; the Image column(s) here: {', '.join(images)}" if images else ""
        raise ColumnTypeError(
            f"image column {column!r} holds {feature}, not images (a datasets.Image feature){hint}. Pass the image "
            "column as --image-column, or cast it with ds.cast_column(name, datasets.Image())"
        )


def task_from_dataset(
    ds, text_column: str = "text", label_column: str = "label", image_column: str | None = None
) -> ClassificationTask:
    """An `ImageClassificationTask` when ``image_column`` is given, else a `TextClassificationTask`."""
    if image_column:
        return ImageClassificationTask.from_dataset(ds, image_column, label_column)
    return TextClassificationTask.from_dataset(ds, text_column, label_column)


def check_input_column(ds, text_column: str = "text", image_column: str | None = None) -> None:
    """Check the input column exists (an Image feature for images), with a hint when the pool holds images but no
    ``image_column`` was given."""
    import datasets

    if image_column:
        check_image_column(ds, image_column)
        return
    if text_column not in ds.column_names:
        images = [n for n, f in ds.features.items() if isinstance(f, datasets.Image)]
        if images:
            raise ColumnNotFoundError(
                f"text column {text_column!r} not found; the dataset holds images in column {images[0]!r}: pass "
                f"--image-column {images[0]} (image_column={images[0]!r}) with an image proxy (timm) or target "
                "(timm/NAME)"
            )
    check_column(ds, text_column, "text", "--text-column")
    check_text_column(ds, text_column)


def check_text_column(ds, column: str) -> None:
    """The text column holds strings (or only nulls: a pool with no text at all); numbers, lists or images there are a
    `ColumnTypeError` that names the fix, not an Arrow error further on."""
    import datasets

    feature = ds.features[column]
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string", "null"):
        return
    hint = (
        f"; it holds images: pass --image-column {column} (and an image proxy such as timm)"
        if isinstance(feature, datasets.Image)
        else ""
    )
    raise ColumnTypeError(
        f"text column {column!r} holds {feature}, not strings; pass the column with the text as --text-column, or "
        f"cast it with ds.cast_column({column!r}, datasets.Value('string')){hint}"
    )


def iter_text_batches(ds, column: str, batch_size: int = 8192) -> Iterator[pa.Array]:
    """Yield a string column in Arrow batches (nulls become empty strings), reading only that column."""
    view = ds.select_columns([column]).with_format("arrow")
    for table in view.iter(batch_size=batch_size):
        arr = table.column(0).combine_chunks()
        if pa.types.is_null(arr.type):  # a column with no text at all
            arr = arr.cast(pa.string())
        yield pc.fill_null(arr, "")


def first_words(texts: pa.Array, n: int) -> pa.Array:
    """Every text cut to its first ``n`` whitespace-separated words, joined by single spaces (texts with fewer words
    keep them all). Lets a proxy read what a target with a short input length reads."""
    words = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(texts), max_splits=n)
    return pc.binary_join(pc.list_slice(words, 0, n), " ")


def check_max_words(value: Any, proxy: str) -> int | None:
    """``max_words`` as given to a text proxy: ``None`` (whole texts) or a positive integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{proxy} max_words must be a positive integer or None (whole texts), got {value!r}")
    return value


def empty_image_mask(ds, column: str, batch_size: int = 65536) -> np.ndarray:
    """True for rows without an image (null, or an ``{"bytes", "path"}`` struct with neither), read from Arrow
    without decoding any image."""
    parts = []
    view = ds.select_columns([column]).with_format("arrow")
    for table in view.iter(batch_size=batch_size):
        arr = table.column(0).combine_chunks()
        missing = pc.is_null(arr)
        if pa.types.is_struct(arr.type) and {"bytes", "path"} <= {f.name for f in arr.type}:
            no_file = pc.and_(pc.is_null(pc.struct_field(arr, "bytes")), pc.is_null(pc.struct_field(arr, "path")))
            missing = pc.or_(missing, no_file)
        parts.append(missing.to_numpy(zero_copy_only=False).astype(bool))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


# A text made only of these shows nothing: separators and whitespace (incl. U+00A0, U+3000), control and format
# characters (zero-width space / joiners U+200B-U+200D, word joiner U+2060, byte-order mark U+FEFF, bidi marks, soft
# hyphen), the combining grapheme joiner, Hangul fillers and variation selectors.
_BLANK_TEXT = r"^[\p{Z}\p{Cc}\p{Cf}\x{034F}\x{115F}\x{1160}\x{3164}\x{FFA0}\x{FE00}-\x{FE0F}]*$"


def empty_text_mask(ds, column: str, batch_size: int = 65536) -> np.ndarray:
    """True for rows whose text is None, empty, or only whitespace and invisible characters (zero-width spaces and
    joiners, byte-order marks, ...): nothing a model could read."""
    parts = []
    for arr in iter_text_batches(ds, column, batch_size):
        parts.append(pc.match_substring_regex(arr, _BLANK_TEXT).to_numpy(zero_copy_only=False))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _column(ds, name: str) -> pa.Array:
    col = ds.select_columns([name]).with_format("arrow")[name]
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _as_int(column: pa.Array, name: str) -> pa.Array:
    if pa.types.is_integer(column.type):
        return column.cast(pa.int64())
    if pa.types.is_floating(column.type):  # e.g. pandas turned ints with gaps into floats
        valid = pc.drop_null(pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column))
        if len(valid) and not pc.all(pc.equal(pc.floor(valid), valid)).as_py():
            raise LabelError(f"label column {name!r} holds non-integer numbers; labels must be class ids or names")
        return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column).cast(pa.int64())
    raise LabelError(f"label column {name!r} has type {column.type}; use integer, string or ClassLabel labels")


def _label_kind(column: pa.Array, name: str, feature) -> tuple[str, tuple]:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        values = pc.unique(pc.drop_null(column)).to_pylist()
        return "str", tuple(sorted(v for v in values if v != ""))
    ints = _as_int(column, name)
    values = sorted(pc.unique(pc.drop_null(ints)).to_pylist())
    if values and values[0] < 0:
        raise LabelError(
            f"label column {name!r} holds negative values {[v for v in values if v < 0][:5]}; "
            "use null for unlabeled rows, or a ClassLabel feature (where -1 means no label)"
        )
    return "int", tuple(values)


# --------------------------------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------------------------------
def parse_budget(value: str | float | int) -> float | int:
    """``"0.1"`` -> 0.1 (a fraction), ``"300"`` -> 300 (a count), ``"10%"`` -> 0.1."""
    if isinstance(value, bool):
        raise BudgetError(f"budget must be a fraction in (0, 1] or a row count, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100.0
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        return float(text)
    except ValueError:
        raise BudgetError(
            f"budget {value!r} is not a number; use a fraction like 0.1, a percentage like 10% or a count like 300"
        ) from None


def check_budget(budget: str | float | int) -> float | int:
    """Parse a budget and check what can be checked without the pool: positive, and a fraction at most 1."""
    value = parse_budget(budget)
    if isinstance(value, float):
        if not math.isfinite(value) or value <= 0:
            raise BudgetError(f"budget {value} must be positive: a fraction in (0, 1] or a row count")
        if value > 1:
            hint = f" (for {int(value)} rows pass the integer {int(value)})" if value.is_integer() else ""
            raise BudgetError(f"budget {value} is a fraction above 1; a float budget is a share of the pool{hint}")
    elif value <= 0:
        raise BudgetError(f"budget {value} must be positive: a fraction in (0, 1] or a row count")
    return value


def resolve_budget(budget: str | float | int, pool_size: int, available: int | None = None) -> int:
    """Turn a budget into a row count.

    A float is a fraction of the whole pool, in (0, 1], rounded half up; an int is a number of rows. ``available``
    is how many rows can still be picked (the unlabeled ones); asking for more raises `PoolExhaustedError`.
    """
    if pool_size <= 0:
        raise EmptyPoolError("the pool has no rows")
    value = check_budget(budget)
    if isinstance(value, float):
        n = math.floor(value * pool_size + 0.5)
        if n == 0:
            raise BudgetError(f"budget {value} of {pool_size} rows rounds to 0 rows; use a larger fraction or a count")
    else:
        if value > pool_size:
            raise BudgetError(f"budget of {value} rows is more than the pool holds ({pool_size} rows)")
        n = value
    if available is not None and n > available:
        raise PoolExhaustedError(f"{n} rows requested, {available} selectable rows left in the pool of {pool_size}")
    return n
