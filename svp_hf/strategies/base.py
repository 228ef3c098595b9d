"""Strategies turn proxy outputs into a ranked choice of rows.

A strategy never touches a dataset: it gets arrays (`ProxyOutputs`), how many rows to pick, which rows are not
candidates (already labeled, or empty), and a seed; it returns exactly that many unique indices, most valuable
first, plus a score for every pool row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, PoolExhaustedError
from ..proxies.base import ProxyOutputs
from ..registry import Registry


@dataclass
class StrategyResult:
    """``indices``: the chosen rows, most valuable first. ``scores``: float32, one per pool row (the strategy's
    own score; ``higher_is_better`` says which direction ranks first)."""

    indices: np.ndarray
    scores: np.ndarray
    higher_is_better: bool


def argselect(
    scores: np.ndarray,
    n: int,
    *,
    higher_is_better: bool,
    exclude: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Indices of the ``n`` best rows by ``scores``, best first, skipping ``exclude`` (a boolean mask or an
    index array). Ties are broken uniformly at random from ``rng`` (never by row order: on a pool sorted by
    label, index order would skew the classes picked). NaN scores rank after every number.

    Raises `PoolExhaustedError` when fewer than ``n`` rows are candidates.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    rng = np.random.default_rng(rng)
    candidates = np.arange(scores.shape[0])
    if exclude is not None:
        mask = np.zeros(scores.shape[0], dtype=bool)
        exclude = np.asarray(exclude)
        if exclude.dtype == bool:
            mask |= exclude
        else:
            mask[exclude.astype(np.int64)] = True
        candidates = candidates[~mask]
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n > candidates.size:
        raise PoolExhaustedError(f"{n} rows requested, {candidates.size} candidate rows left")
    candidates = rng.permutation(candidates)  # random order among equal scores
    key = scores[candidates]
    key = np.where(np.isnan(key), np.inf, -key if higher_is_better else key)
    order = np.argsort(key, kind="stable")[:n]
    return candidates[order].astype(np.int64)


class Strategy(ABC):
    """Base class of selection strategies; subclasses are registered by name with `register_strategy`.

    ``requires`` names the `ProxyOutputs` fields the strategy reads (``"probs"``, ``"embeddings"``), so the
    selection only computes what is needed; a strategy that needs nothing (``random``) needs no proxy at all.
    """

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]] = frozenset({"probs"})
    defaults: ClassVar[dict[str, Any]] = {}
    # Under several processes, True: `select` gets only this process's embeddings (``outputs.embeddings_shard``)
    # and must combine across processes itself (k-centers does); False: the embeddings of every row are gathered.
    sharded_embeddings: ClassVar[bool] = False

    def __init__(self, **kwargs: Any):
        unknown = sorted(set(kwargs) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise ConfigError(f"unknown {self.name} strategy argument(s) {unknown}; valid: {valid}")
        self.kwargs = {**self.defaults, **kwargs}

    @abstractmethod
    def select(
        self,
        outputs: ProxyOutputs,
        n: int,
        *,
        exclude: np.ndarray | None = None,
        seed: int = 0,
        labeled: np.ndarray | None = None,
    ) -> StrategyResult:
        """Pick ``n`` rows. ``exclude`` (mask or indices) are never picked; ``labeled`` (indices, also excluded)
        are the rows already labeled, for strategies that use them (k-centers starts from them)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"


# The two directions a per-row score can rank in. "hardest" (the default) puts the rows the proxy finds hardest first
# (most uncertain, most often forgotten): what active learning and the SVP paper's core-sets keep. "easiest" reverses
# it, for pruning to a small fraction of a pool, where keeping only the hardest rows does worse than random (BENCHMARKS
# "Core-set with the pretrained target"; Sorscher et al. 2022, "Beyond neural scaling laws").
ORDERS = ("hardest", "easiest")


class OrderedStrategy(Strategy):
    """A strategy ranking rows by a per-row score, with an ``order`` argument: ``"hardest"`` (default) or
    ``"easiest"`` first."""

    defaults: ClassVar[dict[str, Any]] = {"order": "hardest"}

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls.defaults = {"order": "hardest", **cls.defaults}  # a subclass's own defaults keep the order argument

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.kwargs["order"] not in ORDERS:
            raise ConfigError(
                f"{self.name} strategy: order must be 'hardest' (the default: hardest rows first) or 'easiest' "
                f"(easiest first, for keeping a small fraction of a pool), got {self.kwargs['order']!r}"
            )

    def ranked_direction(self, hardest_is_higher: bool) -> bool:
        """``higher_is_better`` to rank by, for a score whose hardest rows score ``hardest_is_higher``."""
        return hardest_is_higher if self.kwargs["order"] == "hardest" else not hardest_is_higher


class ScoreStrategy(OrderedStrategy):
    """A strategy that scores each row from the class probabilities and takes the best ``n``.

    Subclasses implement `score` (a pure function of ``probs``) and set ``higher_is_better`` (the direction of the
    hardest rows); ``order="easiest"`` ranks the other way.
    """

    higher_is_better: ClassVar[bool]

    @staticmethod
    @abstractmethod
    def score(probs: np.ndarray) -> np.ndarray: ...

    def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
        if outputs.probs is None:
            raise ConfigError(f"strategy {self.name!r} needs class probabilities from the proxy")
        scores = self.score(np.asarray(outputs.probs, dtype=np.float32)).astype(np.float32)
        direction = self.ranked_direction(self.higher_is_better)
        indices = argselect(scores, n, higher_is_better=direction, exclude=exclude, rng=seed)
        return StrategyResult(indices, scores, direction)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def register_strategy(name: str):
    """Class decorator: make a `Strategy` available by ``name``."""
    return STRATEGIES.register(name)


def build_strategy(strategy: str | Strategy, **kwargs: Any) -> Strategy:
    if isinstance(strategy, Strategy):
        if kwargs:
            raise ConfigError("strategy_kwargs cannot be combined with a Strategy instance")
        return strategy
    return STRATEGIES.get(strategy)(**kwargs)
