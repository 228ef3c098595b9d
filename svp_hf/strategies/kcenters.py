"""Greedy k-centers (farthest-first traversal; Sener & Savarese 2018) on proxy embeddings, in O(N·D) memory.

The reference built a dense (labeled + budget) x N distance matrix, terabytes at Amazon-review scale. Here a
running minimum-distance vector of length N is kept instead: each pick costs one pass over the embeddings, and
the distances to the initial centres are computed in chunks whose size is bounded by ``chunk_elements``. Under
several processes each keeps the running minimum of its own rows (see `greedy_k_centers`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, PoolExhaustedError
from .base import Strategy, StrategyResult, register_strategy

CHUNK_ELEMENTS = 1 << 22  # 16 MiB of float32 per distance block
DIRECT = "donot_use_mm_for_euclid_dist"


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
    dist=None,
    shard: tuple[int, int] | None = None,
    num_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n`` rows of ``x`` by greedy farthest-first traversal (Euclidean).

    Args:
        x: ``[N, D]`` embeddings (computed in float32); with ``dist``, only this process's rows ``shard``.
        n: how many rows to pick.
        centers: rows that are centres already (the labeled set); never picked.
        exclude: boolean mask or indices of rows that may not be picked and are not centres (e.g. empty texts).
        seed: random tie-breaking, and the random first centres when there are no ``centers``.
        initial_random: without ``centers``, how many random rows start the traversal (they are the first picks).
        device: ``"cuda"``, ``"cpu"`` or None (a GPU when one is present).
        dist (`svp_hf.distributed.Distributed`, *optional*): run across processes. Each keeps the running minimum
            distances of its own rows ``shard = (start, stop)`` of a pool of ``num_rows`` (memory O(N/P · D) for the
            embeddings); every step one all-gather of each process's farthest row picks the global one. ``centers``
            and ``exclude`` are pool-wide, and every process gets the same result as one process would.

    Returns:
        ``(indices, scores)``: the picked rows in pick order, and for every row the distance to its nearest centre
        when it was picked (picked rows; ``inf`` for random starting rows) or at the end (the others). Picked
        distances never increase along the pick order.
    """
    import torch

    dev = _device(device)
    if dist is None:
        start, stop = 0, x.shape[0]
        num_rows = x.shape[0]
    else:
        start, stop = shard
        if x.shape[0] != stop - start or num_rows is None:
            raise ValueError(f"x has {x.shape[0]} rows for shard {shard} of a pool of {num_rows}")
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

    # Rows are kept in a random order so that argmax (first maximum) breaks ties at random; ``keys`` are the rows'
    # places in that order, which across processes decide ties exactly as one process would.
    perm = rng.permutation(num_rows)
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(num_rows)
    local_keys = inverse[start:stop]
    order = np.argsort(local_keys, kind="stable")
    keys = local_keys[order]
    m = stop - start
    xt = torch.as_tensor(np.ascontiguousarray(x[order], dtype=np.float32), device=dev).reshape(m, x.shape[1])
    min_d = torch.full((m,), float("inf"), device=dev)
    # Distances come from direct differences (cdist without its matrix-product shortcut), not the |x|² - 2x·c + |c|²
    # expansion through BLAS, whose rounding depends on where a row sits in the matrix: a row's distance is then the
    # same bits in one process or in any shard of several, and never suffers the expansion's cancellation. One pick
    # costs about what the matrix-vector product did; the initial centres cost more (no BLAS), see BENCHMARKS.md.
    if centers.size:
        step = max(1, chunk_elements // max(num_rows, 1))
        for lo in range(0, centers.size, step):
            block = centers[lo : lo + step]
            if dist is None:
                c = xt[torch.as_tensor(inverse[block], device=dev)]
            else:
                c = torch.as_tensor(_center_rows(x, block, start, stop, dist), device=dev)
            if m:
                d = torch.cdist(xt, c, compute_mode=DIRECT)
                torch.minimum(min_d, d.min(dim=1).values, out=min_d)
        mine = centers[(centers >= start) & (centers < stop)]
        min_d[torch.as_tensor(np.searchsorted(keys, inverse[mine]), device=dev)] = 0.0
    taken = torch.as_tensor(blocked[start:stop][order], device=dev)  # rows that can no longer be picked

    picked = np.empty(n, dtype=np.int64)  # pool rows
    picked_d = np.empty(n, dtype=np.float32)
    n_random = 0 if centers.size else min(initial_random, n)
    free = np.flatnonzero(~blocked[perm])[:n_random]  # the first free rows of a random order: uniform picks
    for i in range(n):
        if i < n_random:
            key, value = int(free[i]), None
            pos = int(np.searchsorted(keys, key)) if dist is not None else key
            local = pos < m and keys[pos] == key
        else:
            pos = int(torch.argmax(min_d.masked_fill(taken, -1.0))) if m else 0
            local = m > 0 and not bool(taken[pos])
            key, value = (int(keys[pos]), min_d[pos]) if local else (-1, None)
        if dist is None:
            c = xt[pos].clone()
        else:
            key, value, c = _farthest_across(dist, xt, pos if local else None, key, value, i < n_random)
            pos = int(np.searchsorted(keys, key))
            local = pos < m and keys[pos] == key
            c = c.to(dev)
        picked[i] = perm[key]
        picked_d[i] = np.inf if i < n_random else float(value)
        if local:
            taken[pos] = True
        if m:
            torch.minimum(min_d, torch.cdist(xt, c[None], compute_mode=DIRECT)[:, 0], out=min_d)
    local_scores = np.empty(m, dtype=np.float32)
    local_scores[order] = min_d.cpu().numpy()
    scores = local_scores if dist is None else dist.gather_rows(local_scores, num_rows)
    scores[picked] = picked_d
    return picked, scores.astype(np.float32)


def _center_rows(x: np.ndarray, block: np.ndarray, start: int, stop: int, dist) -> np.ndarray:
    """The embeddings of pool rows ``block`` on every process; each row comes from the process that holds it (the
    others add zeros, so the sum is exact)."""
    import torch
    import torch.distributed as tdist

    out = torch.zeros((block.size, x.shape[1]), dtype=torch.float32, device=dist.device)
    here = np.flatnonzero((block >= start) & (block < stop))
    if here.size:
        out[torch.as_tensor(here, device=dist.device)] = torch.as_tensor(
            np.asarray(x[block[here] - start], dtype=np.float32), device=dist.device
        )
    tdist.all_reduce(out, group=dist.group)
    return out.cpu()


def _farthest_across(dist, xt, pos, key, value, forced):
    """One all-gather: each process offers its farthest free row (or, for a random starting pick, the process holding
    it offers that row), as ``[distance, key, x]`` in float64 (exact for float32 values and row keys); the largest
    distance wins, ties go to the smaller key, as in one process's random order."""
    import torch

    msg = torch.full((2 + xt.shape[1],), float("-inf"), dtype=torch.float64)
    if pos is not None:
        msg[0] = 0.0 if forced else float(value)
        msg[1] = float(key)
        msg[2:] = xt[pos].double().cpu()
    else:
        msg[1] = float("inf")
    offers = torch.as_tensor(dist.all_gather_array(msg.numpy()))
    tied = offers[:, 0] == offers[:, 0].max()
    winner = int(torch.argmin(torch.where(tied, offers[:, 1], torch.full_like(offers[:, 1], float("inf")))))
    row = offers[winner]
    return int(row[1]), row[0].float(), row[2:].float()


@register_strategy("kcenters")
class KCenters(Strategy):
    """Greedy k-centers on the proxy's embeddings: each pick is the row farthest from every labeled row and every
    earlier pick (a core-set that covers the pool). The labeled rows are the initial centres; with none
    (core-set mode) ``initial_random`` random rows start the traversal.

    Strategy arguments: ``initial_random`` (default 1), ``device`` (default: a GPU when present).
    """

    requires = frozenset({"embeddings"})
    sharded_embeddings = True
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
        sharded = {}
        if outputs.embeddings_shard is not None:  # several processes, each holding its rows' embeddings
            from ..distributed import current

            sharded = {"dist": current(), "shard": outputs.embeddings_shard, "num_rows": outputs.num_rows}
        indices, scores = greedy_k_centers(
            outputs.embeddings,
            n,
            centers=labeled,
            exclude=mask,
            seed=seed,
            initial_random=int(self.kwargs["initial_random"]),
            device=self.kwargs["device"],
            **sharded,
        )
        return StrategyResult(indices, scores, True)
