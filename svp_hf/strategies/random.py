"""Random selection: the baseline every strategy must beat. Needs no proxy."""

from __future__ import annotations

import numpy as np

from .base import Strategy, StrategyResult, argselect, register_strategy


@register_strategy("random")
class RandomStrategy(Strategy):
    """A uniform random sample of the candidates; each row's score is a uniform draw, highest picked first."""

    requires = frozenset()

    def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
        scores = np.random.default_rng(seed).random(outputs.num_rows).astype(np.float32)
        indices = argselect(scores, n, higher_is_better=True, exclude=exclude, rng=seed + 1)
        return StrategyResult(indices, scores, True)
