"""Typed errors. Every message says what was wrong, with the numbers, and how to fix it.

All of them derive from `SvpError`, so callers can catch one type; each also derives from the built-in
type a Python user would expect (`ValueError`, `TypeError`, `KeyError`-like lookups stay `ValueError` so
the message prints unquoted).
"""

from __future__ import annotations


class SvpError(Exception):
    """Base class of every error svp-hf raises on purpose."""


class DatasetNotFoundError(SvpError, FileNotFoundError):
    """`--dataset` is neither an existing local path nor a loadable Hub id."""


class DataFileError(SvpError, ValueError):
    """A data file exists but cannot be read as the format its name says (a broken CSV, a truncated Parquet file)."""


class SplitNotFoundError(SvpError, ValueError):
    """The requested split does not exist in the dataset."""


class DatasetTypeError(SvpError, TypeError):
    """A `DatasetDict`, an `IterableDataset` or another object was given where a `Dataset` belongs."""


class ColumnNotFoundError(SvpError, ValueError):
    """A text, image or label column is missing from the dataset."""


class ColumnTypeError(SvpError, TypeError):
    """A column exists but holds the wrong type (e.g. numbers in the text column)."""


class LabelError(SvpError, ValueError):
    """Labels are missing, of an unsupported type, or inconsistent with the task."""


class EmptyPoolError(SvpError, ValueError):
    """The pool has no rows (or no rows that can be selected)."""


class BudgetError(SvpError, ValueError):
    """The budget is not a positive count or a fraction in (0, 1], or asks for more rows than exist."""


class PoolExhaustedError(BudgetError):
    """More rows were requested than the candidates left in the pool."""


class RegistryError(SvpError, ValueError):
    """An unknown or invalid proxy / strategy name."""


class ConfigError(SvpError, ValueError):
    """An invalid configuration value, config file or keyword argument."""


class ProxyError(SvpError, RuntimeError):
    """A proxy could not be trained, used or loaded."""


class NotFittedError(ProxyError):
    """A proxy was used before `fit()` (or `load()`)."""


class MissingDependencyError(SvpError, ImportError):
    """An optional dependency is not installed."""


class OutputExistsError(SvpError, FileExistsError):
    """The output directory already exists."""


class CheckpointMismatchError(OutputExistsError):
    """``OUTPUT_DIR.partial`` holds checkpoints of a different training run (other rows, model or settings)."""


class DistributedError(SvpError, RuntimeError):
    """Several processes were launched but cannot work together (no process group, or a peer failed)."""


class HubError(SvpError, RuntimeError):
    """An upload to the Hugging Face Hub failed (offline mode, network, permissions, a card the Hub rejects)."""


class OutputPathError(SvpError, ValueError):
    """The output folder cannot be written there: it overlaps an input, sits under a file, or is not writable."""
