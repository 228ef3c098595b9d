"""Rare-class hunting: give the classes with far too few labels a share of the batch.

Uncertainty sampling finds a class only where the proxy already hesitates over it. A class that is rare in the
pool (5% of its rows, say) is seldom predicted at all by a proxy trained on a handful of its rows, so its rows are
not among the uncertain ones and the labeled set stays as skewed as the pool, or worse. `hunt_rare_classes` takes a
strategy's picks and, for each class whose labeled count is under ``rare_below`` times the mean count per class,
replaces the tail of the batch with the unlabeled rows the proxy finds most likely to be of that class, as many as
a batch that evened out the class counts would give it (less the picks already predicted as that class). While the
labeled rows average few per class (under ``min_mean``; cluster_margin's ``rare_min_mean``, 10) no class counts as
rare: with 77 classes and 2.6 random rows each, a class with 0 or 1 rows is chance, and hunting its most likely
rows cost Banking77 4-5 points at the first query (BENCHMARKS.md, "Against small-text").

Measured on AG News with Sci/Tech cut to 5% of its rows (BENCHMARKS.md, "A pretrained target on an imbalanced
pool"): the top rows by the proxy's probability of the rare class are 15-35% of that class against 1.7% in the pool.
On pools whose classes are about equally labeled no class is under the threshold and the picks are unchanged.
"""

from __future__ import annotations

import numpy as np


def balancing_quota(counts: np.ndarray, n: int) -> np.ndarray:
    """How many of ``n`` new rows each class would get in a batch that evens out ``counts`` (water-filling: the
    classes with the fewest rows are raised to a common level; where ``n`` does not divide evenly, the classes
    with fewer rows, then lower ids, get one more). Sums to ``n``."""
    counts = np.asarray(counts, dtype=np.int64)
    quota = np.zeros_like(counts)
    if n <= 0 or counts.size == 0:
        return quota
    order = np.argsort(counts, kind="stable")
    low = counts[order]
    # the k lowest classes are raised together: k is the first for which reaching the next class's level costs > n
    cost = low * np.arange(1, low.size + 1) - np.cumsum(low)  # rows to raise the first k+1 classes to low[k]
    k = int(np.searchsorted(cost, n, side="right"))  # cost is non-decreasing; cost[k-1] <= n
    level, extra = divmod(int(low[:k].sum()) + n, k)
    fill = np.full(k, level, dtype=np.int64)
    fill[:extra] += 1
    quota[order[:k]] = fill - low[:k]
    return quota


def rare_classes(counts: np.ndarray, rare_below: float, min_mean: float = 0) -> np.ndarray:
    """Ids of the classes labeled fewer than ``rare_below`` times the mean count per class; none while that mean is
    under ``min_mean`` (with a few labels per class, a low count is chance, not a rare class)."""
    counts = np.asarray(counts, dtype=np.float64)
    if rare_below <= 0 or counts.size < 2 or counts.sum() == 0 or counts.mean() < min_mean:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(counts < rare_below * counts.mean()).astype(np.int64)


def hunt_rare_classes(
    picks: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray | None,
    candidates: np.ndarray,
    rare_below: float,
    *,
    embeddings: np.ndarray | None = None,
    spread: float = 0,
    seed: int = 0,
    min_mean: float = 0,
) -> np.ndarray:
    """``picks`` (a strategy's batch, best first) with rows of the rare classes in place of its tail.

    Args:
        picks: the batch, ``n`` row indices.
        probs: ``[N, C]`` class probabilities of the pool.
        labels: ``[N]`` known label ids, -1 where unlabeled (`ProxyOutputs.labels`); None: the picks, unchanged.
        candidates: boolean ``[N]``, rows that may be picked.
        rare_below: a class is rare when labeled fewer than this times the mean count per class (0: never).
        min_mean: no class is rare while the mean count per class is under this.
        embeddings, spread, seed: with ``spread`` s >= 1 and embeddings, a class that needs k rows gets them from its
            s·k most likely rows, k-means-clustered into k groups (seeded), the most likely row of each group: rows
            spread over the class rather than the k nearest its few labeled ones.

    Returns:
        ``n`` distinct rows: the hunted rows of the rare classes first (rarest class first, each by its probability,
        highest first, from every candidate row, picked or not), then the other picks in their order, cut to ``n``.
    """
    picks = np.asarray(picks, dtype=np.int64)
    if labels is None or picks.size == 0:
        return picks
    probs = np.asarray(probs)
    num_classes = probs.shape[1]
    known = np.asarray(labels)
    counts = np.bincount(known[known >= 0], minlength=num_classes)[:num_classes]
    rare = rare_classes(counts, rare_below, min_mean)
    if rare.size == 0:
        return picks
    n = picks.size
    quota = balancing_quota(counts, n)
    predicted = probs[picks].argmax(1)
    free = np.asarray(candidates, dtype=bool).copy()
    free[picks[np.isin(predicted, rare)]] = False  # counted already: never hunted a second time
    hunted: list[np.ndarray] = []
    for c in rare[np.argsort(counts[rare], kind="stable")]:
        need = int(quota[c]) - int((predicted == c).sum())
        if need <= 0:
            continue
        rows = np.flatnonzero(free)
        if spread >= 1 and embeddings is not None:
            rows = _spread(rows[np.argsort(-probs[rows, c], kind="stable")[: int(np.ceil(spread * need))]],
                           probs[:, c], embeddings, need, seed)  # fmt: skip
        else:
            rows = rows[np.argsort(-probs[rows, c], kind="stable")[:need]]
        free[rows] = False
        hunted.append(rows)
    if not hunted:
        return picks
    hunted_rows = np.concatenate(hunted)[:n]
    rest = picks[~np.isin(picks, hunted_rows)]  # a pick that was hunted too keeps its place among the hunted
    return np.concatenate([hunted_rows, rest[: n - hunted_rows.size]]).astype(np.int64)


def _spread(rows: np.ndarray, likely: np.ndarray, embeddings: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` of ``rows`` (most likely first): k-means of their embeddings into k groups, each group's most likely row,
    then (where groups came out empty) the most likely rows left; ordered by ``likely``, highest first."""
    from .clustering import kmeans

    k = min(k, rows.size)
    if k == 0 or rows.size <= k:
        return rows[:k]
    x = np.asarray(embeddings, dtype=np.float32)[rows]
    _, groups, _ = kmeans(x - x.mean(0), k, seed=seed)
    chosen = np.zeros(rows.size, dtype=bool)
    order = np.lexsort((-likely[rows], groups))  # by group, most likely first within each
    first = np.ones(rows.size, dtype=bool)
    first[1:] = groups[order][1:] != groups[order][:-1]
    chosen[order[first]] = True
    if chosen.sum() < k:
        chosen[np.flatnonzero(~chosen)[: k - int(chosen.sum())]] = True  # rows are most likely first
    picked = rows[chosen]
    return picked[np.argsort(-likely[picked], kind="stable")]
