"""`select()`: a pool `Dataset` in, the selected rows out as a `Dataset` with provenance."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import SelectionConfig
from .data import ClassificationTask, check_input_column, ensure_dataset, resolve_budget, task_from_dataset
from .distributed import current as current_distributed
from .errors import ConfigError, EmptyPoolError, LabelError
from .io import atomic_directory, check_output_path, write_json_atomic
from .proxies import Proxy, ProxyOutputs, build_proxy
from .strategies import build_strategy, forgetting_counts

logger = logging.getLogger(__name__)

PROVENANCE_COLUMNS = ("svp_pool_index", "svp_score", "svp_rank")
CONFIG_FILE = "selection_config.json"
SCORES_FILE = "svp_pool_scores.npy"


@dataclass
class SelectionResult:
    """The outcome of `select`.

    Attributes:
        dataset (`datasets.Dataset`): ``pool.select(indices)`` plus ``svp_pool_index`` (row in the pool),
            ``svp_score`` (the strategy's score) and ``svp_rank`` (0 = picked first).
        indices (`np.ndarray`): the selected pool rows, most valuable first.
        scores (`np.ndarray`): float32, the strategy's score of every pool row.
        higher_is_better (`bool`): the direction in which ``scores`` rank.
        config (`SelectionConfig`): the settings used.
        timings (`dict`): seconds spent in ``proxy_fit``, ``proxy_score``, ``strategy`` and ``total``.
        proxy (`Proxy` or `None`): the fitted proxy (``None`` for strategies that need none, like ``random``).
        source (`dict`): where the pool came from (the CLI records ``dataset`` and ``split``).
    """

    dataset: Any
    indices: np.ndarray
    scores: np.ndarray
    higher_is_better: bool
    config: SelectionConfig
    timings: dict[str, float]
    proxy: Proxy | None = None
    pool_size: int = 0
    num_labeled: int = 0
    num_empty_text: int = 0
    labeled_indices: np.ndarray | None = None
    class_counts: dict[str, dict[str, int]] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    num_processes: int = 1

    def __len__(self) -> int:
        return len(self.indices)

    def selection_config(self) -> dict[str, Any]:
        """Everything needed to reproduce the selection, as written to ``selection_config.json``."""
        return {
            "svp_hf_version": __version__,
            "command": self.command,
            "source": self.source,
            "pool_size": self.pool_size,
            "num_selected": len(self.indices),
            "num_labeled": self.num_labeled,
            "num_empty_text_skipped": self.num_empty_text,
            "config": self.config.to_dict(),
            "proxy_hyperparameters": self.proxy.hyperparameters if self.proxy is not None else None,
            "proxy_used": self.proxy is not None,
            "proxy_self_check": self.proxy.self_check if self.proxy is not None else None,
            "proxy_tuning": self.proxy.tuning if self.proxy is not None else None,
            "higher_score_is_better": self.higher_is_better,
            "labeled_indices": self.labeled_indices.tolist() if self.labeled_indices is not None else None,
            "class_counts": self.class_counts,
            "timings_s": self.timings,
            "num_processes": self.num_processes,
            "versions": package_versions(),
        }

    def save_to_disk(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the selection to a folder, atomically (a temporary folder renamed into place).

        The folder opens with ``datasets.load_from_disk(path)`` and also holds ``selection_config.json``,
        ``svp_pool_scores.npy`` (the score of every pool row) and a dataset card (``README.md``).
        """
        path = Path(path)

        def write():
            check_output_path(path, overwrite=overwrite, inputs=[self.dataset, self.source.get("dataset")])
            self._write(path, overwrite)

        dist = current_distributed()
        if dist is None:
            write()
        else:  # one writer, which alone checks the folder (another process could see the main one's finished
            # folder and refuse it); the others wait, and fail with it if the check or the write fails
            dist.on_main(write, f"writing {path}")
        return path

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload the selected rows (Parquet), a dataset card and ``selection_config.json`` to the dataset repository
        ``repo_id``; ``local_dir=...`` writes exactly that upload to a folder instead. See `svp_hf.hub.push_to_hub`."""
        from .hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def _write(self, path: Path, overwrite: bool) -> None:
        from .cards import render_dataset_card

        with atomic_directory(path, overwrite=overwrite) as tmp:
            self.dataset.save_to_disk(str(tmp))
            write_json_atomic(tmp / CONFIG_FILE, self.selection_config())
            np.save(tmp / SCORES_FILE, self.scores)
            (tmp / "README.md").write_text(render_dataset_card(self))


def select(
    pool,
    config: SelectionConfig | None = None,
    *,
    labeled_indices: np.ndarray | list[int] | None = None,
    labels: np.ndarray | list[int] | None = None,
    task: ClassificationTask | None = None,
    **overrides: Any,
) -> SelectionResult:
    """Select rows of ``pool`` with a proxy and a strategy.

    Two uses:

    - **from a labeled subset** (active learning): pass ``labeled_indices``; the proxy trains on those rows and
      the strategy picks among the others.
    - **core-set / pruning**: no ``labeled_indices``; the proxy trains on every row and the strategy ranks them all.

    Rows whose text is None, empty or whitespace (or, for images, rows without an image) are never selected and
    never trained on (a warning counts them): an empty input carries nothing to label, and uncertainty strategies
    would otherwise rank them first, since a proxy is maximally unsure about an empty input.

    Image pools: set ``image_column`` (a `datasets.Image` column) and use an image proxy (``timm``).

    Args:
        pool (`datasets.Dataset`): the rows to choose from.
        config (`SelectionConfig`, *optional*): the settings; keyword arguments override its fields
            (``select(pool, budget=0.2)``).
        labeled_indices (array of `int`, *optional*): pool rows already labeled.
        labels (array of `int`, *optional*): label ids of ``labeled_indices`` (in the same order), when they come from
            an oracle rather than the pool's label column (which may then be missing or empty).
        task (`TextClassificationTask` or `ImageClassificationTask`, *optional*): the class names and columns; by
            default read from the pool.

    Example:
        ```python
        >>> import svp_hf
        >>> result = svp_hf.select(pool, svp_hf.SelectionConfig(proxy="fasttext", strategy="entropy", budget=0.1))
        >>> result.dataset  # the selected rows, with svp_pool_index / svp_score / svp_rank
        ```
    """
    config = _merge(config, overrides)
    pool = ensure_dataset(pool)
    num_rows = pool.num_rows
    if num_rows == 0:
        raise EmptyPoolError("the pool has no rows")
    check_input_column(pool, config.text_column, config.image_column)
    strategy = build_strategy(config.strategy, **config.strategy_kwargs)
    t_start = time.perf_counter()

    if task is not None and task.modality != config.modality:
        raise ConfigError(f"a {task.modality} task was given for a {config.modality} selection; check image_column")
    empty = _empty_inputs(pool, config, task)
    num_empty = int(empty.sum())
    if num_empty:
        logger.warning(
            "%d of %d rows have no %s; they are neither selected nor trained on",
            num_empty,
            num_rows,
            "image" if config.modality == "image" else "text (None, empty or whitespace)",
        )
    labeled = _check_labeled(labeled_indices, num_rows)
    exclude = empty.copy()
    if labeled is not None:
        exclude[labeled] = True
    n = resolve_budget(config.budget, num_rows, available=int((~exclude).sum()))

    needs_proxy = bool(strategy.requires)
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labeled is None or labels.shape != labeled.shape:
            raise ConfigError("labels must come with labeled_indices, one label id per labeled row")
    if task is None and (needs_proxy and labels is None or config.label_column in pool.column_names):
        try:
            task = task_from_dataset(pool, config.text_column, config.label_column, config.image_column)
        except LabelError as err:
            if needs_proxy and labels is None:
                raise
            # here the task would only count classes: a label column with no classes yet (all null) is no obstacle
            logger.info("no class counts: %s", err)
    if labels is not None and task is None:
        raise ConfigError(
            "labels given without a task: pass task=TextClassificationTask(label_names=...) "
            "(ImageClassificationTask for images)"
        )
    proxy = None
    timings = {"proxy_fit": 0.0, "proxy_score": 0.0}
    dist = current_distributed()  # None in one process; several: shard the scoring, gather in pool order
    outputs = ProxyOutputs(num_rows=num_rows)
    if needs_proxy:
        proxy = build_proxy(config.proxy, seed=config.seed, **config.proxy_kwargs)
        train_rows = labeled[~empty[labeled]] if labeled is not None else np.flatnonzero(~empty)
        if train_rows.size == 0:
            raise EmptyPoolError(
                f"no labeled rows with {'an image' if config.modality == 'image' else 'text'} to train the proxy on; "
                "start with strategy='random' to pick an initial labeled set"
            )
        train = pool if train_rows.size == num_rows else pool.select(train_rows)
        train_task = task
        if labels is not None:  # train on the oracle's labels, whatever the pool's label column holds
            train, train_task = _with_oracle_labels(train, labels[~empty[labeled]], task)
        observe = "forgetting" in strategy.requires
        t0 = time.perf_counter()
        shared_s = 0.0
        fit = lambda: proxy.fit(train, train_task, observe=pool if observe else None, unlabeled=pool)  # noqa: E731
        if dist is None:
            fit()
        else:  # fitted once, on the main process, and sent to the others: one model, whatever its determinism
            if task is not None:
                proxy.prepare_shared(pool, task, dist)  # e.g. each process encodes a share of the pool
                shared_s = time.perf_counter() - t0
            dist.on_main(fit, "fitting the proxy")
            proxy = dist.broadcast_proxy(proxy)
            proxy.attach_pool(pool)  # the others score from the pool's cached features (written by the main one)
        timings["proxy_fit"] = time.perf_counter() - t0
        timings.update(_split_fit_time(proxy, timings["proxy_fit"] - shared_s))
        if shared_s:
            timings["proxy_features"] = timings.get("proxy_features", 0.0) + shared_s
        t0 = time.perf_counter()
        outputs = _score(proxy, pool, strategy, config, dist)
        known = np.full(num_rows, -1, dtype=np.int64)
        known[train_rows] = train_task.labels_for_training(train)
        outputs.labels = known
        if observe:
            counts = None
            if dist is None or dist.is_main:
                counts = forgetting_counts(proxy.epoch_predictions, known)
            outputs.forgetting = counts if dist is None else dist.broadcast_array(counts, (num_rows,), np.float32)
        timings["proxy_score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    chosen = strategy.select(outputs, n, exclude=exclude, seed=config.seed, labeled=labeled)
    timings["strategy"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    indices = chosen.indices
    dataset = _with_provenance(pool, indices, chosen.scores[indices])
    return SelectionResult(
        dataset=dataset,
        indices=indices,
        scores=chosen.scores,
        higher_is_better=chosen.higher_is_better,
        config=config,
        timings={k: round(v, 6) for k, v in timings.items()},
        proxy=proxy,
        pool_size=num_rows,
        num_labeled=0 if labeled is None else int(labeled.size),
        num_empty_text=num_empty,
        labeled_indices=labeled,
        class_counts=_class_counts(task, pool, indices) if config.label_column in pool.column_names else None,
        source=_source(pool),
        num_processes=1 if dist is None else dist.world_size,
    )


def _split_fit_time(proxy: Proxy, fit_seconds: float) -> dict[str, float]:
    """The fit's seconds split into the once-per-run pool features (computed, or read from the disk cache; a lookup
    in memory in later rounds stays in the fit), the self-check (a diagnostic, not needed to select) and the rest
    (``proxy_fit``: training, tuning)."""
    out = {}
    once = getattr(proxy, "features_origin", None) in ("computed", "disk")
    features = getattr(proxy, "feature_seconds", 0.0) if once else 0.0
    check = (proxy.self_check or {}).get("seconds") or 0.0
    if features:
        out["proxy_features"] = features
    if check:
        out["proxy_check"] = check
    out["proxy_fit"] = max(0.0, fit_seconds - features - check)
    return out


def _score(proxy: Proxy, pool, strategy, config: SelectionConfig, dist) -> ProxyOutputs:
    """The proxy's outputs for every pool row; under several processes each scores a contiguous shard and the shards
    are gathered in pool order (embeddings stay sharded for strategies that combine them across processes)."""
    want_probs, want_embeddings = "probs" in strategy.requires, "embeddings" in strategy.requires
    kwargs = {"batch_size": config.batch_size, "progress": config.progress}
    if dist is None:
        return proxy.score(pool, probs=want_probs, embeddings=want_embeddings, **kwargs)
    num_rows = pool.num_rows
    start, stop = dist.shard(num_rows)
    local = proxy.score(pool.select(range(start, stop)), probs=want_probs, embeddings=want_embeddings, **kwargs)
    probs = dist.gather_rows(local.probs, num_rows) if want_probs else None
    if not want_embeddings:
        return ProxyOutputs(num_rows=num_rows, probs=probs)
    if strategy.sharded_embeddings:
        return ProxyOutputs(num_rows, probs=probs, embeddings=local.embeddings, embeddings_shard=(start, stop))
    return ProxyOutputs(num_rows, probs=probs, embeddings=dist.gather_rows(local.embeddings, num_rows))


def _merge(config: SelectionConfig | None, overrides: dict[str, Any]) -> SelectionConfig:
    if config is None:
        return SelectionConfig(**overrides)
    if not isinstance(config, SelectionConfig):
        raise ConfigError(f"config must be a SelectionConfig, got {type(config).__name__}")
    if not overrides:
        return config
    valid = {f.name for f in fields(SelectionConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"unknown selection setting(s) {unknown}; valid: {', '.join(sorted(valid))}")
    values = {f.name: getattr(config, f.name) for f in fields(SelectionConfig)}
    return SelectionConfig(**{**values, **overrides})


ORACLE_LABEL_COLUMN = "svp_oracle_label"


def _empty_inputs(pool, config: SelectionConfig, task: ClassificationTask | None) -> np.ndarray:
    """Rows without input (no text / no image), from the task when there is one, else from the config's columns."""
    from .data import empty_image_mask, empty_text_mask

    if task is not None:
        return task.empty_input_mask(pool)
    if config.image_column:
        return empty_image_mask(pool, config.image_column)
    return empty_text_mask(pool, config.text_column)


def _with_oracle_labels(train, label_ids: np.ndarray, task: ClassificationTask):
    """The training rows' input with the oracle's labels as a ClassLabel column, and the matching task."""
    import datasets

    bad = label_ids[(label_ids < 0) | (label_ids >= task.num_labels)]
    if bad.size:
        raise ConfigError(f"label ids {bad[:5].tolist()} are outside 0..{task.num_labels - 1}")
    train = _in_memory(train.select_columns([task.input_column]))
    feature = datasets.ClassLabel(names=list(task.label_names))
    train = train.add_column(ORACLE_LABEL_COLUMN, label_ids.tolist(), feature=feature)
    return train, task.with_label_column(ORACLE_LABEL_COLUMN)


def _check_labeled(labeled_indices, num_rows: int) -> np.ndarray | None:
    if labeled_indices is None:
        return None
    if not isinstance(labeled_indices, np.ndarray) and any(isinstance(i, (bool, np.bool_)) for i in labeled_indices):
        # numpy would turn [0, True] into [0, 1]: refused, as the CLI refuses `true` in a --labeled-indices file
        raise ConfigError(f"labeled_indices must be row numbers, got a bool in {list(labeled_indices)[:10]}")
    labeled = np.asarray(labeled_indices)
    if labeled.size == 0:
        return labeled.astype(np.int64)
    if labeled.ndim != 1 or not np.issubdtype(labeled.dtype, np.integer):
        raise ConfigError(f"labeled_indices must be a 1-D sequence of integers, got dtype {labeled.dtype}")
    labeled = labeled.astype(np.int64)
    bad = labeled[(labeled < 0) | (labeled >= num_rows)]
    if bad.size:
        raise ConfigError(f"labeled_indices {bad[:5].tolist()} are outside the pool (0..{num_rows - 1})")
    unique, counts = np.unique(labeled, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"labeled_indices repeat rows {unique[counts > 1][:5].tolist()}")
    return labeled


def _in_memory(rows):
    """``rows`` (a ``select`` of a pool) with its index mapping applied in memory. Adding a column applies it anyway,
    and by default `datasets` writes the result as ``cache-*.arrow`` beside the pool's own Arrow files: into the
    user's input folder when the pool came from ``load_from_disk``."""
    return rows.flatten_indices(keep_in_memory=True) if rows._indices is not None else rows


def _with_provenance(pool, indices: np.ndarray, scores: np.ndarray):
    selected = _in_memory(pool.select(indices))
    clash = [c for c in PROVENANCE_COLUMNS if c in selected.column_names]
    if clash:  # re-selecting from an earlier selection: the new provenance replaces the old
        selected = selected.remove_columns(clash)
    selected = selected.add_column("svp_pool_index", indices.astype(np.int64))
    selected = selected.add_column("svp_score", scores.astype(np.float32))
    return selected.add_column("svp_rank", np.arange(len(indices), dtype=np.int64))


def _class_counts(task: ClassificationTask | None, pool, indices: np.ndarray) -> dict[str, dict[str, int]] | None:
    if task is None:
        return None
    ids = task.encode_labels(pool)

    def count(values: np.ndarray) -> dict[str, int]:
        counts = np.bincount(values[values >= 0], minlength=task.num_labels)
        out = {name: int(c) for name, c in zip(task.label_names, counts)}
        if (values < 0).any():
            out["(unlabeled)"] = int((values < 0).sum())
        return out

    return {"pool": count(ids), "selected": count(ids[indices])}


def _source(pool) -> dict[str, Any]:
    info = pool.info
    source = {"split": str(pool.split) if pool.split is not None else None, "fingerprint": pool._fingerprint}
    if info.dataset_name:
        source["builder"] = info.dataset_name
    return source


def package_versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "svp_hf": __version__}
    for name in ("datasets", "numpy", "pyarrow", "scikit-learn", "fasttext-numpy2", "transformers", "torch", "timm"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out
