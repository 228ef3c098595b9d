"""Label-free strategies for the first labeled set (cold start): they read embeddings only, never probabilities.

`typiclust` (Hacohen et al., 2022, "Active Learning on a Budget") picks typical rows of distinct clusters, which at
small budgets beats both random and uncertainty sampling. Use it for round 0 of active learning with a label-free
embedding (a frozen encoder, TF-IDF + SVD fitted without labels); it also extends a labeled set, preferring
clusters that hold no labeled row.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..errors import ConfigError
from .base import Strategy, register_strategy
from .batch import candidate_mask, check_available, pick_order_result
from .clustering import CHUNK_ELEMENTS, as_tensor, kmeans


def _knn_mean(d2, k: int) -> np.ndarray:
    """Mean of the square roots of the ``k`` smallest finite entries of each row of ``d2`` (fewer when a row has
    fewer finite entries; ``inf`` when it has none)."""
    import torch

    k = min(k, d2.shape[1])
    near = torch.topk(d2, k, dim=1, largest=False).values.double()  # ascending
    finite = torch.isfinite(near)
    count = finite.sum(1)
    total = torch.where(finite, near.sqrt(), torch.zeros_like(near)).sum(1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("inf"))).cpu().numpy()


def _sq_dists(a, b):
    import torch

    return torch.addmm((b * b).sum(1)[None, :], a, b.T, alpha=-2.0).add_((a * a).sum(1)[:, None]).clamp_(min=0.0)


def knn_spread(
    x, labels: np.ndarray, k: int, rng: np.random.Generator, *, block: int = 1024, max_reference: int = 4096
) -> np.ndarray:
    """For every row of ``x`` (torch ``[N, D]``), the mean Euclidean distance to its ``k`` nearest other rows of
    the same cluster (``labels``); ``inf`` for a row alone in its cluster. Typicality is its inverse.

    Clusters of at most ``block`` rows are done many at once: clusters of similar sizes are padded to one size S
    and stacked, G of them per batched product with G·S·(S + D) bounded by ``CHUNK_ELEMENTS`` (a few torch calls for
    the whole pool, however many clusters). A larger cluster is done on its own, in chunks of rows, its neighbours
    looked for in a uniform sample of at most ``max_reference`` of its rows (a density estimate at bounded cost)."""
    import torch

    dev, dim = x.device, x.shape[1]
    inf = float("inf")
    out = np.full(labels.size, np.inf)
    by_cluster = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    small = [int(c) for c in np.argsort(sizes, kind="stable") if 1 < sizes[c] <= block]  # ascending size
    i = 0
    while i < len(small):  # a batch: clusters small[i:j], padded to the size of the largest (the last)
        j = i + 1
        while j < len(small):
            size = int(sizes[small[j]])
            if size > 1.25 * sizes[small[i]] + 8 or (j - i + 1) * size * (size + dim) > 2 * CHUNK_ELEMENTS:
                break
            j += 1
        width = int(sizes[small[j - 1]])
        idx = np.full((j - i, width), -1, dtype=np.int64)
        for row, c in enumerate(small[i:j]):
            idx[row, : sizes[c]] = by_cluster[bounds[c] : bounds[c + 1]]
        valid = idx >= 0
        xb = x[torch.as_tensor(np.where(valid, idx, idx[:, :1]), device=dev)]  # [G, S, D]
        counts = torch.as_tensor(valid.sum(1), dtype=torch.float32, device=dev)
        vt = torch.as_tensor(valid, device=dev)
        xb -= (xb * vt[:, :, None]).sum(1, keepdim=True) / counts[:, None, None]  # centred: no cancellation
        sq = (xb * xb).sum(2)
        d2 = torch.baddbmm(sq[:, None, :], xb, xb.transpose(1, 2), alpha=-2.0).add_(sq[:, :, None]).clamp_(min=0.0)
        d2.masked_fill_(~vt[:, None, :], inf)
        d2.diagonal(dim1=1, dim2=2).fill_(inf)  # a row is not its own neighbour
        spread = _knn_mean(d2.reshape(-1, width), k).reshape(j - i, width)
        out[idx[valid]] = spread[valid]
        i = j
    for c in np.flatnonzero(sizes > block):  # large clusters, one at a time
        members = by_cluster[bounds[c] : bounds[c + 1]]
        pick = np.arange(members.size)
        if members.size > max_reference:
            pick = np.sort(rng.choice(members.size, max_reference, replace=False))
        ref_pos = np.full(members.size, -1)
        ref_pos[pick] = np.arange(pick.size)
        step = max(1, CHUNK_ELEMENTS // dim)
        mean = sum(
            x[torch.as_tensor(members[lo : lo + step], device=dev)].sum(0) for lo in range(0, members.size, step)
        )
        mean = mean / members.size  # distances between centred rows: no cancellation
        ref = x[torch.as_tensor(members[pick], device=dev)] - mean
        step = max(1, CHUNK_ELEMENTS // pick.size)
        for lo in range(0, members.size, step):
            q = x[torch.as_tensor(members[lo : lo + step], device=dev)] - mean
            d2 = _sq_dists(q, ref)
            own = np.flatnonzero(ref_pos[lo : lo + step] >= 0)  # a row never counts as its own neighbour
            d2[torch.as_tensor(own, device=dev), torch.as_tensor(ref_pos[lo + own], device=dev)] = inf
            out[members[lo : lo + step]] = _knn_mean(d2, k)
    return out


@register_strategy("typiclust")
class TypiClust(Strategy):
    """TypiClust: k-means with (labeled + n) clusters over the candidate and labeled rows' embeddings; then, n
    times, the cluster with the fewest labeled or picked rows (the largest first; clusters under
    ``min_cluster_size`` rows last) gives its most typical row not yet picked. Typicality is the inverse mean
    distance to the row's ``knn`` nearest neighbours in its cluster. Needs no labels and no probabilities.

    Strategy arguments: ``knn`` (20), ``min_cluster_size`` (5), ``max_iter`` (k-means iterations, 10),
    ``max_reference`` (neighbours are searched among at most this many rows of a cluster, 4096), ``device``
    (default: a GPU when present).
    """

    requires = frozenset({"embeddings"})
    defaults = {"knn": 20, "min_cluster_size": 5, "max_iter": 10, "max_reference": 4096, "device": None}

    def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
        if outputs.embeddings is None:
            raise ConfigError("strategy 'typiclust' needs embeddings")
        knn, max_reference = int(self.kwargs["knn"]), int(self.kwargs["max_reference"])
        if knn < 1 or max_reference < 2:
            raise ConfigError("typiclust knn must be at least 1 and max_reference at least 2")
        ok = candidate_mask(outputs.num_rows, exclude, labeled)
        check_available(n, ok)
        if n == 0:
            return pick_order_result(np.zeros(0, dtype=np.int64), outputs.num_rows)
        is_labeled = np.zeros(outputs.num_rows, dtype=bool)
        if labeled is not None and len(labeled):
            is_labeled[np.asarray(labeled, dtype=np.int64)] = True
        rows = np.flatnonzero(ok | is_labeled)  # labeled rows are clustered too (they cover their cluster)
        rng = np.random.default_rng(seed)
        x = as_tensor(np.asarray(outputs.embeddings)[rows], self.kwargs["device"])  # a copy: centred in place
        x -= x.mean(0)
        k = min(int(is_labeled.sum()) + n, rows.size)
        _, labels, _ = kmeans(x, k, seed=seed, max_iter=int(self.kwargs["max_iter"]), device=self.kwargs["device"])

        spread = knn_spread(x, labels, knn, rng, max_reference=max_reference)
        # every cluster's candidates, most typical (smallest spread) first, ties at random
        cand = np.flatnonzero(ok[rows])
        cand = cand[np.lexsort((rng.permutation(cand.size), spread[cand], labels[cand]))]
        sizes = np.bincount(labels, minlength=k)
        starts = np.searchsorted(labels[cand], np.arange(k + 1))  # cluster c's candidates: cand[starts[c]:starts[c+1]]
        covered = np.bincount(labels, weights=is_labeled[rows], minlength=k).astype(np.int64)
        tie = rng.permutation(k)
        small = int(self.kwargs["min_cluster_size"])
        heap = [
            (bool(sizes[c] < small), int(covered[c]), -int(sizes[c]), int(tie[c]), c)
            for c in range(k)
            if starts[c + 1] > starts[c]
        ]
        heapq.heapify(heap)
        taken = np.zeros(k, dtype=np.int64)
        picked = np.empty(n, dtype=np.int64)
        for i in range(n):  # the least covered cluster (then the largest) gives its most typical row left
            is_small, count, neg_size, t, c = heapq.heappop(heap)
            picked[i] = rows[cand[starts[c] + taken[c]]]
            taken[c] += 1
            if starts[c] + taken[c] < starts[c + 1]:
                heapq.heappush(heap, (is_small, count + 1, neg_size, t, c))
        return pick_order_result(picked, outputs.num_rows)
