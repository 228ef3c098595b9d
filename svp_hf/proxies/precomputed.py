"""A proxy whose outputs were recorded elsewhere: by `svp_hf.callbacks.ForgettingEventsCallback` in a user's own
`transformers.Trainer` run. It lets the next run prune with what the last one learned:

    svp-hf coreset --dataset ../shared/data/ag_news --proxy precomputed \\
        --proxy-kwargs '{"path": "run/forgetting_events.npz"}' --strategy forgetting_events --keep 0.5 \\
        --output-dir kept

The file holds, per training row (identified by its stable index), the predicted class after every epoch and the
last epoch's class probabilities. Pool rows are matched to it through ``index_column`` (``null``: the pool's
``svp_pool_index`` column when it has one, so a selection folder matches a run trained on it, else the row's
position in the pool).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ProxyError
from .base import Proxy, register_proxy

FILE_NAME = "forgetting_events.npz"
ARRAYS = ("index", "labels", "predictions", "probs")


def load_record(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a recorded run (``forgetting_events.npz``, or the run folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        raise ProxyError(
            f"{path} does not exist; ForgettingEventsCallback writes {FILE_NAME} into the run's output_dir"
        )
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ARRAYS if k not in data.files]
        if missing:
            raise ProxyError(f"{path} lacks {missing}; it was not written by ForgettingEventsCallback")
        return {k: data[k] for k in data.files}


@register_proxy("precomputed")
class PrecomputedProxy(Proxy):
    """Outputs recorded during an earlier training run (per-epoch predictions and the last epoch's probabilities).

    Hyperparameters: ``path`` (the ``forgetting_events.npz`` file or the run folder), ``index_column`` (the pool
    column with each row's index in the recorded run; ``null``: ``svp_pool_index`` if the pool has it, else the row's
    position). ``fit`` trains
    nothing: it matches pool rows to the record; forgetting events are counted from the recorded epochs.
    """

    observable = True
    defaults = {"path": None, "index_column": None}

    def __init__(self, seed: int = 0, **hyperparameters):
        super().__init__(seed=seed, **hyperparameters)
        if not self.hyperparameters["path"]:
            raise ConfigError(
                'the precomputed proxy needs a path: --proxy-kwargs \'{"path": "RUN_DIR/forgetting_events.npz"}\''
            )
        self.record: dict[str, np.ndarray] | None = None

    def _positions(self, dataset) -> np.ndarray:
        if self.record is None:
            self.record = load_record(self.hyperparameters["path"])
        column = self.hyperparameters["index_column"]
        if column is None:
            wanted = np.arange(dataset.num_rows, dtype=np.int64)
            if "svp_pool_index" in dataset.column_names:
                wanted = np.asarray(dataset[:]["svp_pool_index"], dtype=np.int64)
        else:
            if column not in dataset.column_names:
                raise ConfigError(f"index column {column!r} is not in the dataset (columns: {dataset.column_names})")
            wanted = np.asarray(dataset[:][column], dtype=np.int64)
        index = self.record["index"]
        order = np.argsort(index, kind="stable")
        found = np.searchsorted(index[order], wanted)
        found = np.minimum(found, len(index) - 1)
        ok = index[order][found] == wanted
        if not ok.all():
            raise ProxyError(
                f"{int((~ok).sum())} of {len(wanted)} rows (e.g. index {int(wanted[~ok][0])}) were not in the "
                f"recorded run ({len(index)} rows); set index_column to the column that identifies rows in both"
            )
        return order[found]

    def _fit(self, dataset, labels: np.ndarray) -> None:
        self._positions(dataset)  # checks that the record covers the training rows

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        self._fit(dataset, labels)
        return self.record["predictions"][:, self._positions(observe)]

    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        probs = self.record["probs"][self._positions(dataset)]
        if probs.shape[1] != self.task.num_labels:
            raise ProxyError(f"the record has {probs.shape[1]} classes, the pool {self.task.num_labels}")
        return probs

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        raise ProxyError("the precomputed proxy records predictions, not embeddings; use a probability or "
                         "forgetting-events strategy")  # fmt: skip

    def _save(self, path: Path) -> None:
        src = Path(self.hyperparameters["path"])
        shutil.copyfile(src / FILE_NAME if src.is_dir() else src, path / FILE_NAME)

    def _load(self, path: Path) -> None:
        self.record = load_record(path / FILE_NAME)
