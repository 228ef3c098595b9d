"""Forgetting events (Toneva et al. 2019), as the SVP paper uses them for core-set selection."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError
from ..proxies.base import PROXIES
from .base import OrderedStrategy, StrategyResult, argselect, register_strategy

logger = logging.getLogger(__name__)


def forgetting_counts(epoch_predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row forgetting events from the predicted class after each training epoch.

    Args:
        epoch_predictions: ``[E, N]`` predicted class ids, one row per epoch in training order.
        labels: ``[N]`` label ids, ``-1`` for rows without a label.

    Returns float32 ``[N]``: for labeled rows, the number of correct -> incorrect transitions between consecutive
    epochs, and ``inf`` for rows never predicted correctly (never learned: ranked first). For unlabeled rows,
    where correctness is unknown, the number of epochs at which the predicted class changed (prediction flips),
    the label-free analogue used when forgetting events drive active learning.
    """
    preds = np.asarray(epoch_predictions)
    labels = np.asarray(labels)
    if preds.ndim != 2 or preds.shape[1] != labels.shape[0]:
        raise ValueError(f"epoch_predictions {preds.shape} do not match labels {labels.shape}")
    correct = preds == labels[None, :]
    forgotten = (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.float32)
    flips = (preds[1:] != preds[:-1]).sum(axis=0).astype(np.float32)
    known = labels >= 0
    counts = np.where(known, forgotten, flips)
    counts[known & ~correct.any(axis=0)] = np.inf
    return counts


@register_strategy("forgetting_events")
class ForgettingEvents(OrderedStrategy):
    """Rows the proxy forgot most often while training (never-learned rows first; random tie-break).

    In core-set mode the proxy trains on every row, so every row has a forgetting count. With a labeled subset
    (active learning) the candidates are unlabeled, so their score is the number of prediction flips between
    epochs. Needs a proxy whose training can be observed epoch by epoch (``fasttext``, ``tfidf``, ...: the proxies
    with ``observable``), over at least two epochs. Outputs without forgetting counts are an error; counts that are the
    same for every candidate (one observed epoch, or nothing ever forgotten) log a warning, as the ranking is then the
    random tie-break alone. ``order="easiest"`` ranks the least forgotten rows first (never-learned rows last), for
    keeping a small fraction of a pool.
    """

    requires = frozenset({"forgetting"})

    def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
        if outputs.forgetting is None:
            observable = ", ".join(name for name in PROXIES.names() if PROXIES.get(name).observable)
            raise ConfigError(
                "strategy 'forgetting_events' needs forgetting counts recorded while the proxy trained "
                f"(ProxyOutputs.forgetting); `select` records them with a proxy observed epoch by epoch: {observable}"
            )
        scores = np.asarray(outputs.forgetting, dtype=np.float32)
        direction = self.ranked_direction(True)
        indices = argselect(scores, n, higher_is_better=direction, exclude=exclude, rng=seed)
        candidates = np.ones(scores.shape[0], dtype=bool)
        if exclude is not None:
            exclude = np.asarray(exclude)
            candidates[exclude if exclude.dtype == bool else exclude.astype(np.int64)] = False
        values = scores[candidates]
        if values.size > n and (values == values[0]).all():
            logger.warning(
                "forgetting_events: all %d candidate rows have the same forgetting count (%g), so the %d picked are "
                "a random draw. The proxy recorded fewer than two epochs (raise observe_epochs for tfidf, embedding, "
                "hybrid; epochs for fasttext, timm, transformer, vdcnn) or forgot nothing; a probability strategy "
                "(margin, entropy) ranks with the same proxy",
                values.size, values[0], n,
            )  # fmt: skip
        return StrategyResult(indices, scores, direction)
