"""Batch-aware uncertainty sampling: spread a batch of uncertain rows over the embedding space.

Plain margin sampling takes the ``n`` lowest-margin rows, and with large batches these are often near-duplicates
of one confusing region. Both strategies here first keep the ``candidate_factor · n`` lowest-margin candidates and
then cluster those (k-means, `svp_hf.strategies.clustering`: O(M·D) memory for M candidates, seeded, a GPU when
present) to pick a diverse batch among them.

Their ``scores`` are the pick order (0 for the first pick, 1 for the second, ...; ``n`` for every row not picked,
``higher_is_better=False``): a row's value depends on the rest of the batch, so no per-row score ranks the batch.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, PoolExhaustedError
from .balance import hunt_rare_classes
from .base import Strategy, StrategyResult, argselect, register_strategy
from .clustering import as_tensor, kmeans
from .uncertainty import margin_scores


def candidate_mask(num_rows: int, exclude=None, labeled=None) -> np.ndarray:
    """Boolean mask of the rows that may be picked: neither excluded nor labeled."""
    ok = np.ones(num_rows, dtype=bool)
    for rows in (exclude, labeled):
        if rows is not None:
            rows = np.asarray(rows)
            ok[rows if rows.dtype == bool else rows.astype(np.int64)] = False
    return ok


def check_available(n: int, ok: np.ndarray) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n > int(ok.sum()):
        raise PoolExhaustedError(f"{n} rows requested, {int(ok.sum())} candidate rows left")


def pick_order_result(picked: np.ndarray, num_rows: int) -> StrategyResult:
    """Scores that are the pick order: ``i`` for the ``i``-th pick, ``len(picked)`` for every other row."""
    picked = np.asarray(picked, dtype=np.int64)
    scores = np.full(num_rows, picked.size, dtype=np.float32)
    scores[picked] = np.arange(picked.size, dtype=np.float32)
    return StrategyResult(picked, scores, False)


class _MarginCandidates(Strategy):
    """Shared part: the lowest-margin candidates, in margin order (ties at random from the seed)."""

    requires = frozenset({"probs", "embeddings"})
    factor_name = "candidate_factor"

    def _candidates(self, outputs, n, exclude, labeled, seed):
        if outputs.probs is None or outputs.embeddings is None:
            raise ConfigError(f"strategy {self.name!r} needs class probabilities and embeddings from the proxy")
        factor = float(self.kwargs[self.factor_name])
        if not factor >= 1:
            raise ConfigError(f"{self.name} {self.factor_name} must be at least 1, got {factor}")
        ok = candidate_mask(outputs.num_rows, exclude, labeled)
        check_available(n, ok)
        margins = margin_scores(np.asarray(outputs.probs, dtype=np.float32)).astype(np.float32)
        m = min(int(ok.sum()), max(n, math.ceil(factor * n)))
        cand = argselect(margins, m, higher_is_better=False, exclude=~ok, rng=seed)
        return cand, margins[cand]

    def _cluster(self, outputs, cand, k, seed, weights=None):
        x = as_tensor(np.asarray(outputs.embeddings)[cand], self.kwargs["device"])  # a copy: centred in place
        x -= x.mean(0)
        _, labels, d2 = kmeans(
            x,
            k,
            weights=weights,
            seed=seed,
            max_iter=int(self.kwargs["max_iter"]),
            device=self.kwargs["device"],
        )
        return labels, d2


@register_strategy("cluster_margin")
class ClusterMargin(_MarginCandidates):
    """Cluster-Margin (Citovsky et al., 2021): the ``candidate_factor · n`` lowest-margin rows are clustered, and the
    batch is filled round-robin over the clusters, smallest cluster first, taking each cluster's lowest-margin row
    not yet picked in turn. A region of near-duplicate uncertain rows forms one cluster and gives one row per round.

    The paper clusters the whole pool once with average-linkage agglomerative clustering (O(N²)); here the
    candidates are clustered with k-means into ``clusters`` groups (default ``n``: one row per cluster, the
    round-robin order among them), in O(M·D) memory.

    Classes with far too few labels get a share of the batch (`svp_hf.strategies.balance`): where the proxy's
    outputs carry the labeled rows' classes, each class labeled fewer than ``rare_below`` times the mean count per
    class has the batch's tail replaced by the rows the proxy finds most likely to be of it, up to what an evening-out
    batch would give it; only once the mean count per class reaches ``rare_min_mean`` (with a few labels per class a
    low count is chance: hunting from Banking77's random start of 2.6 rows per class cost the first query 4-5
    points). On pools whose classes are about equally labeled nothing changes.

    Strategy arguments: ``candidate_factor`` (10), ``clusters`` (None: ``n``), ``max_iter`` (k-means iterations,
    10), ``device`` (default: a GPU when present), ``rare_below`` (0.5; 0 turns rare-class hunting off),
    ``rare_spread`` (0: a rare class gets its k most likely rows; s >= 1: the most likely row of each of k k-means
    groups of its s·k most likely rows, spread over the class), ``rare_min_mean`` (10: no class is rare while the
    labeled rows average fewer per class).
    """

    defaults = {
        "candidate_factor": 10, "clusters": None, "max_iter": 10, "device": None, "rare_below": 0.5, "rare_spread": 0,
        "rare_min_mean": 10,
    }  # fmt: skip

    def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
        cand, _ = self._candidates(outputs, n, exclude, labeled, seed)
        if n == 0:
            return pick_order_result(cand[:0], outputs.num_rows)
        k = n if self.kwargs["clusters"] is None else int(self.kwargs["clusters"])
        if k < 1:
            raise ConfigError(f"cluster_margin clusters must be at least 1, got {k}")
        labels, _ = self._cluster(outputs, cand, min(k, cand.size), seed)
        # ``cand`` is in margin order, so a stable sort by cluster lists each cluster's rows lowest margin first
        by_cluster = np.argsort(labels, kind="stable")
        sizes = np.bincount(labels, minlength=int(labels.max()) + 1)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        turn = np.empty(cand.size, dtype=np.int64)  # the round in which each candidate comes up
        turn[by_cluster] = np.arange(cand.size) - starts[labels[by_cluster]]
        # clusters by size ascending; equal sizes: the one holding the lower-margin row first
        best = np.full(sizes.size, cand.size, dtype=np.int64)
        np.minimum.at(best, labels, np.arange(cand.size))
        cluster_rank = np.empty(sizes.size, dtype=np.int64)
        cluster_rank[np.lexsort((best, sizes))] = np.arange(sizes.size)
        order = np.lexsort((cluster_rank[labels], turn))[:n]
        picks = hunt_rare_classes(
            cand[order], outputs.probs, outputs.labels, candidate_mask(outputs.num_rows, exclude, labeled),
            float(self.kwargs["rare_below"]), embeddings=outputs.embeddings, spread=float(self.kwargs["rare_spread"]),
            seed=seed, min_mean=float(self.kwargs["rare_min_mean"]),
        )  # fmt: skip
        return pick_order_result(picks, outputs.num_rows)


@register_strategy("margin_kmeans")
class MarginKMeans(_MarginCandidates):
    """Uncertainty-filtered weighted k-means (Zhdanov, 2019, "Diverse mini-batch active learning"): the
    ``beta · n`` lowest-margin rows are clustered into ``n`` groups by k-means weighted by ``1 - margin``, and the
    row nearest each centre is picked; picks are ordered by margin, lowest first.

    Strategy arguments: ``beta`` (10), ``max_iter`` (k-means iterations, 10), ``device`` (default: a GPU when
    present).
    """

    defaults = {"beta": 10, "max_iter": 10, "device": None}
    factor_name = "beta"

    def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
        cand, margins = self._candidates(outputs, n, exclude, labeled, seed)
        if n == 0:
            return pick_order_result(cand[:0], outputs.num_rows)
        weights = np.clip(1.0 - margins.astype(np.float64), 1e-6, None)
        labels, d2 = self._cluster(outputs, cand, n, seed, weights)
        # the candidate nearest its cluster's centre (ties: lower margin), one per non-empty cluster
        nearest = np.lexsort((np.arange(cand.size), d2, labels))
        first = np.ones(cand.size, dtype=bool)
        first[1:] = labels[nearest][1:] != labels[nearest][:-1]
        chosen = np.zeros(cand.size, dtype=bool)
        chosen[nearest[first]] = True
        if chosen.sum() < n:  # fewer distinct candidates than clusters: the lowest-margin others fill the batch
            chosen[np.flatnonzero(~chosen)[: n - int(chosen.sum())]] = True
        return pick_order_result(cand[np.flatnonzero(chosen)], outputs.num_rows)
