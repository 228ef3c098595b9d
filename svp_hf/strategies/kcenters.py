"""Greedy k-centers (farthest-first traversal; Sener & Savarese 2018) on proxy embeddings, in O(N·D) memory.

The reference built a dense (labeled + budget) x N distance matrix, terabytes at Amazon-review scale. Here a
running minimum-distance vector of length N is kept instead: each pick costs one matrix-vector product, and
the distances to the initial centres are computed in chunks whose size is bounded by ``chunk_elements``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, PoolExhaustedError
from .base import Strategy, StrategyResult, register_strategy

CHUNK_ELEMENTS = 1 << 22  # 16 MiB of float32 per distance block


def _device(device: str | None):
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def greedy_k_centers(
    x: np.ndarray,
    n: int,
    *,
    centers: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    seed: int = 0,
    initial_random: int = 1,
    device: str | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n`` rows of ``x`` by greedy farthest-first traversal (Euclidean).

    Args:
        x: ``[N, D]`` embeddings (computed in float32).
        n: how many rows to pick.
        centers: rows that are centres already (the labeled set); never picked.
        exclude: boolean mask or indices of rows that may not be picked and are not centres (e.g. empty texts).
        seed: random tie-breaking, and the random first centres when there are no ``centers``.
        initial_random: without ``centers``, how many random rows start the traversal (they are the first picks).
        device: ``"cuda"``, ``"cpu"`` or None (a GPU when one is present).

    Returns:
        ``(indices, scores)``: the picked rows in pick order, and for every row the distance to its nearest centre
        when it was picked (picked rows; ``inf`` for random starting rows) or at the end (the others). Picked
        distances never increase along the pick order.
    """
    import torch

    dev = _device(device)
    num_rows = x.shape[0]
    rng = np.random.default_rng(seed)
    blocked = np.zeros(num_rows, dtype=bool)
    if exclude is not None:
        exclude = np.asarray(exclude)
        blocked[exclude if exclude.dtype == bool else exclude.astype(np.int64)] = True
    centers = np.asarray([] if centers is None else centers, dtype=np.int64)
    blocked[centers] = True
    available = int((~blocked).sum())
    if n > available:
        raise PoolExhaustedError(f"{n} rows requested, {available} candidate rows left")

    # Work in a random row order so that argmax (first maximum) breaks ties at random, then map back.
    perm = rng.permutation(num_rows)
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(num_rows)
    xt = torch.as_tensor(np.ascontiguousarray(x[perm], dtype=np.float32), device=dev)
    sq = (xt * xt).sum(dim=1)
    min_d = torch.full((num_rows,), float("inf"), device=dev)
    if centers.size:
        cpos = torch.as_tensor(inverse[centers], device=dev)
        step = max(1, chunk_elements // max(num_rows, 1))
        for start in range(0, cpos.numel(), step):
            c = xt[cpos[start : start + step]]
            d = (xt @ c.T).mul_(-2.0).add_(sq[:, None]).add_((c * c).sum(dim=1)[None, :])  # in place: one block
            torch.minimum(min_d, d.min(dim=1).values.clamp_(min=0.0), out=min_d)
        min_d[cpos] = 0.0  # exact, where the expansion above leaves float32 round-off
    taken = torch.as_tensor(blocked[perm], device=dev)  # rows that can no longer be picked

    picked = np.empty(n, dtype=np.int64)  # positions in the permuted order
    picked_d = np.empty(n, dtype=np.float32)
    n_random = 0 if centers.size else min(initial_random, n)
    free = np.flatnonzero(~blocked[perm])[:n_random]  # the first free rows of a random order: uniform picks
    for i in range(n):
        if i < n_random:
            pos, dist = int(free[i]), np.inf
        else:
            pos = int(torch.argmax(min_d.masked_fill(taken, -1.0)))
            dist = float(min_d[pos].sqrt())
        picked[i], picked_d[i] = pos, dist
        taken[pos] = True
        d = (xt @ xt[pos]).mul_(-2.0).add_(sq).add_(sq[pos]).clamp_(min=0.0)
        torch.minimum(min_d, d, out=min_d)
    scores_perm = min_d.sqrt().cpu().numpy()
    rows = perm[picked]
    scores = scores_perm[inverse]
    scores[rows] = picked_d
    return rows, scores.astype(np.float32)


@register_strategy("kcenters")
class KCenters(Strategy):
    """Greedy k-centers on the proxy's embeddings: each pick is the row farthest from every labeled row and every
    earlier pick (a core-set that covers the pool). The labeled rows are the initial centres; with none
    (core-set mode) ``initial_random`` random rows start the traversal.

    Strategy arguments: ``initial_random`` (default 1), ``device`` (default: a GPU when present).
    """

    requires = frozenset({"embeddings"})
    defaults = {"initial_random": 1, "device": None}

    def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
        if outputs.embeddings is None:
            raise ConfigError("strategy 'kcenters' needs embeddings from the proxy")
        if int(self.kwargs["initial_random"]) < 1:
            raise ConfigError("kcenters initial_random must be at least 1")
        mask = np.zeros(outputs.num_rows, dtype=bool)
        if exclude is not None:
            exclude = np.asarray(exclude)
            mask[exclude if exclude.dtype == bool else exclude.astype(np.int64)] = True
        if labeled is not None and len(labeled):
            mask[np.asarray(labeled, dtype=np.int64)] = False  # centres, handled by greedy_k_centers
        indices, scores = greedy_k_centers(
            outputs.embeddings,
            n,
            centers=labeled,
            exclude=mask,
            seed=seed,
            initial_random=int(self.kwargs["initial_random"]),
            device=self.kwargs["device"],
        )
        return StrategyResult(indices, scores, True)
