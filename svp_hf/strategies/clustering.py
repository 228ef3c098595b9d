"""Seeded, memory-bounded k-means in torch (a GPU when present), for the clustering strategies.

Memory is the embeddings (O(N·D), shared with numpy on the CPU when they are float32) plus O(k·D) centres and
distance blocks bounded by ``chunk_elements``; no N x N or N x k matrix is ever held. Time is bounded too:

* Lloyd's iterations run on a uniform subsample of at most ``max_points_per_centroid`` rows per centre (as faiss
  does), and every row is assigned to the final centres once at the end;
* the seeding is k-means++'s D² sampling, on a uniform sample of at most ``SEED_POINTS_PER_CENTROID`` rows per
  centre, done in growing batches (each round draws up to a quarter as many new centres as there are, without
  replacement, from the D² distribution; about log(k)/log(1.25) rounds, like k-means||), so it costs less than one
  Lloyd iteration instead of k passes over the data. D² seeding, unlike a uniform draw, rarely puts two centres in one
  tight blob of near-duplicates, which Lloyd's iterations could not undo.

Everything random comes from ``numpy.random.default_rng(seed)``: the same seed, data and thread count give the same
clusters.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK_ELEMENTS = 1 << 22  # 16 MiB of float32 per distance block
SEED_POINTS_PER_CENTROID = 8  # the D² seeding draws from at most this many rows per centre


def _device(device):
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def as_tensor(x: np.ndarray, device=None):
    """``x`` as a float32 ``[N, D]`` torch tensor on ``device`` (no copy for float32 numpy on the CPU)."""
    import torch

    x = np.asarray(x)
    x = x.reshape(x.shape[0], -1)
    return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=_device(device))


def nearest_centers(x, centers, *, x_sq=None, chunk_elements: int = CHUNK_ELEMENTS):
    """For every row of ``x`` (torch ``[N, D]``) the index of its nearest row of ``centers`` (``[k, D]``) and the
    squared Euclidean distance to it, in blocks of at most ``chunk_elements`` distances. ``x_sq``: the rows' squared
    norms, when already known."""
    import torch

    n, k = x.shape[0], centers.shape[0]
    if x_sq is None:
        x_sq = (x * x).sum(1)
    labels = torch.empty(n, dtype=torch.int64, device=x.device)
    d2 = torch.empty(n, dtype=torch.float32, device=x.device)
    c_sq = (centers * centers).sum(1)
    step = max(1, chunk_elements // max(k, 1))
    for lo in range(0, n, step):
        block = x[lo : lo + step]
        d = torch.addmm(c_sq[None, :], block, centers.T, alpha=-2.0)  # |c|² - 2 x·c
        best, arg = d.min(dim=1)
        labels[lo : lo + step] = arg
        d2[lo : lo + step] = (best + x_sq[lo : lo + step]).clamp_(min=0.0)
    return labels, d2


def weighted_sample(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """``size`` distinct indices drawn without replacement with probabilities proportional to ``p`` (>= 0), by
    exponential keys (Efraimidis-Spirakis). Rows with weight 0 come last, in uniformly random order."""
    p = np.asarray(p, dtype=np.float64)
    keys = rng.exponential(size=p.shape[0])
    with np.errstate(divide="ignore"):
        keys = np.where(p > 0, keys / np.where(p > 0, p, 1.0), np.inf)
    order = rng.permutation(p.shape[0])  # random order among zero weights (and exact ties)
    keys = keys[order]
    if size < p.shape[0]:
        part = np.argpartition(keys, size - 1)[:size]
        keys, order = keys[part], order[part]
    return order[np.argsort(keys, kind="stable")][:size]


def cluster_sums(x, w, labels, k: int, *, one_hot: bool | None = None, chunk_elements: int = CHUNK_ELEMENTS):
    """Per cluster, the weighted sum of its rows (``[k, D]``) and its total weight (``[k]``). On a GPU (or with
    ``one_hot``) as products with one-hot blocks, which give the same bits on every run, unlike CUDA's atomic
    ``index_add_``; on the CPU ``index_add_`` (deterministic there, and k times cheaper)."""
    import torch

    if one_hot is None:
        one_hot = x.device.type != "cpu"
    xw = torch.cat([x * w[:, None], w[:, None]], dim=1)  # the weight rides along as a last column
    if not one_hot:
        out = torch.zeros((k, xw.shape[1]), dtype=xw.dtype, device=x.device).index_add_(0, labels, xw)
    else:
        out = torch.zeros((k, xw.shape[1]), dtype=xw.dtype, device=x.device)
        step = max(1, chunk_elements // max(k, 1))
        ids = torch.arange(k, device=x.device)
        for lo in range(0, x.shape[0], step):
            block = (labels[lo : lo + step, None] == ids[None, :]).to(xw.dtype)
            out.addmm_(block.T, xw[lo : lo + step])
    return out[:, :-1], out[:, -1]


def kmeans_plusplus(x, k: int, rng: np.random.Generator, *, weights=None, growth: float = 0.25, **chunk):
    """Indices of ``k`` distinct rows of ``x`` (torch) chosen by D² sampling in growing batches (see the module)."""
    import torch

    n = x.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    chosen = [int(weighted_sample(rng, w, 1)[0])]
    taken = np.zeros(n, dtype=bool)
    taken[chosen[0]] = True
    x_sq = (x * x).sum(1)
    _, min_d2 = nearest_centers(x, x[chosen], x_sq=x_sq, **chunk)
    while len(chosen) < k:
        b = min(k - len(chosen), max(1, math.ceil(growth * len(chosen))))
        p = w * min_d2.double().cpu().numpy()
        p[taken] = 0.0
        if not (p > 0).any():  # fewer distinct rows than centres: the rest uniformly from the rows left
            p = (~taken).astype(np.float64)
        new = weighted_sample(rng, p, b)
        new = new[~taken[new]]  # zero-weight rows come last and may include taken ones
        if new.size < b:
            rest = np.flatnonzero(~taken & ~np.isin(np.arange(n), new))
            new = np.concatenate([new, rng.choice(rest, b - new.size, replace=False)])
        taken[new] = True
        chosen.extend(int(i) for i in new)
        _, d2 = nearest_centers(x, x[torch.as_tensor(new, device=x.device)], x_sq=x_sq, **chunk)
        torch.minimum(min_d2, d2, out=min_d2)
    return np.asarray(chosen, dtype=np.int64)


def kmeans(
    x,
    k: int,
    *,
    weights: np.ndarray | None = None,
    seed: int = 0,
    max_iter: int = 10,
    tol: float = 1e-3,
    max_points_per_centroid: int = 32,
    device: str | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
):
    """Weighted k-means (Euclidean) of the rows of ``x``.

    Args:
        x: ``[N, D]`` numpy array (or a float32 torch tensor).
        k: number of clusters, ``1 <= k <= N``.
        weights: optional non-negative ``[N]`` row weights (D² seeding and the centre means are weighted).
        seed: every random choice (subsample, seeding, refills of empty clusters).
        max_iter: Lloyd iterations at most; they stop earlier once at most ``tol`` of the rows change cluster.
        max_points_per_centroid: Lloyd's iterations see at most ``k`` times this many rows (a uniform subsample).
        device: ``"cuda"``, ``"cpu"`` or None (a GPU when one is present).

    Returns:
        ``(centers, labels, d2)``: float32 ``[k, D]`` centres, int64 ``[N]`` cluster of every row and float32 ``[N]``
        squared distance of every row to its centre, as numpy arrays. Empty clusters are refilled while iterating, but
        one can still be empty at the end (always when ``x`` has fewer than ``k`` distinct rows).
    """
    import torch

    xt = x if isinstance(x, torch.Tensor) else as_tensor(x, device)
    n = xt.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n}), got {k}")
    rng = np.random.default_rng(seed)
    chunk = {"chunk_elements": chunk_elements}
    w_all = None if weights is None else np.asarray(weights, dtype=np.float64)
    if w_all is not None and (w_all.shape != (n,) or not np.all(w_all >= 0)):
        raise ValueError("weights must be non-negative, one per row")
    train, w = xt, w_all
    limit = max(k, k * max_points_per_centroid)
    if n > limit:
        sub = np.sort(rng.choice(n, limit, replace=False))
        train = xt[torch.as_tensor(sub, device=xt.device)]
        w = None if w_all is None else w_all[sub]
    m = train.shape[0]
    wt = torch.ones(m, device=xt.device) if w is None else torch.as_tensor(w, dtype=torch.float32, device=xt.device)

    train_sq = (train * train).sum(1)
    seeds = np.arange(m)
    if m > k * SEED_POINTS_PER_CENTROID:  # the seeding looks at a smaller uniform sample still
        seeds = np.sort(rng.choice(m, k * SEED_POINTS_PER_CENTROID, replace=False))
    pool = train[torch.as_tensor(seeds, device=xt.device)] if seeds.size < m else train
    chosen = kmeans_plusplus(pool, k, rng, weights=None if w is None else w[seeds], **chunk)
    centers = pool[torch.as_tensor(chosen, device=xt.device)].clone()
    del pool
    labels = None
    for _ in range(max_iter):
        new_labels, d2 = nearest_centers(train, centers, x_sq=train_sq, **chunk)
        changed = m if labels is None else int((new_labels != labels).sum())
        labels = new_labels
        if changed <= tol * m or float(d2.max()) == 0.0:
            break
        sums, mass = cluster_sums(train, wt, labels, k, chunk_elements=chunk_elements)
        filled = mass > 0
        centers[filled] = sums[filled] / mass[filled, None]
        empty = torch.nonzero(~filled).flatten().cpu().numpy()
        if empty.size:  # refill empty clusters with the rows worst served by their centre (D²-weighted draw)
            p = d2.double().cpu().numpy() * (np.ones(m) if w is None else w)
            if (p > 0).sum() >= empty.size:
                centers[torch.as_tensor(empty, device=xt.device)] = train[
                    torch.as_tensor(weighted_sample(rng, p, empty.size), device=xt.device)
                ]
    labels, _ = nearest_centers(xt, centers, **chunk)
    # the distances returned are computed directly (|x|² - 2x·c + |c|² loses the small ones to cancellation)
    d2 = torch.empty(n, dtype=torch.float32, device=xt.device)
    step = max(1, chunk_elements // max(xt.shape[1], 1))
    for lo in range(0, n, step):
        diff = xt[lo : lo + step] - centers[labels[lo : lo + step]]
        d2[lo : lo + step] = (diff * diff).sum(1)
    return centers.cpu().numpy(), labels.cpu().numpy(), d2.cpu().numpy()
