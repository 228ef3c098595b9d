"""Uncertainty sampling: least confidence, entropy and margin, from the proxy's class probabilities."""

from __future__ import annotations

import numpy as np
from scipy.special import entr

from .base import ScoreStrategy, register_strategy


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    """``max_c p_c`` per row; the least confident (lowest) rows are picked first."""
    return np.asarray(probs).max(axis=1)


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """``-sum_c p_c log p_c`` per row (natural log), with ``0 log 0 = 0``: never NaN for exact zeros."""
    return entr(np.asarray(probs, dtype=np.float64)).sum(axis=1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """``p_top1 - p_top2`` per row; the smallest margins are picked first."""
    probs = np.asarray(probs)
    if probs.shape[1] < 2:
        return np.ones(probs.shape[0], dtype=probs.dtype)
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


@register_strategy("least_confidence")
class LeastConfidence(ScoreStrategy):
    """Rows whose most likely class has the lowest probability."""

    higher_is_better = False
    score = staticmethod(least_confidence_scores)


@register_strategy("entropy")
class Entropy(ScoreStrategy):
    """Rows with the highest predictive entropy."""

    higher_is_better = True
    score = staticmethod(entropy_scores)


@register_strategy("margin")
class Margin(ScoreStrategy):
    """Rows with the smallest gap between the two most likely classes (strong for text)."""

    higher_is_better = False
    score = staticmethod(margin_scores)
