"""Batch-aware (cluster_margin, margin_kmeans) and cold-start (typiclust) strategies, and the k-means under them."""

import numpy as np
import pytest

from svp_hf import ConfigError, PoolExhaustedError, ProxyOutputs, build_strategy
from svp_hf.strategies import kmeans
from svp_hf.strategies.coldstart import knn_spread

DIM = 8


def blobs(sizes, *, spread=0.05, distance=20.0, seed=0):
    """Tight, far-apart blobs of the given sizes: embeddings and each row's blob."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), DIM)) * distance
    blob = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[blob] + spread * rng.normal(size=(blob.size, DIM))
    return x.astype(np.float32), blob


def probs_from_margins(margins):
    """Two-class probabilities whose margin p1 - p2 is ``margins``."""
    p = (1 + np.asarray(margins)) / 2
    return np.stack([p, 1 - p], axis=1).astype(np.float32)


def uncertain_blob_case():
    """5 blobs of 40; every row of blob 0 is less certain than any other row, and the other blobs' rows come next
    in turn (blob 1's best, blob 2's best, ..., blob 1's second best, ...)."""
    x, blob = blobs([40] * 5)
    margins = np.empty(blob.size)
    margins[blob == 0] = np.linspace(0.0, 0.1, 40)
    for b in range(1, 5):
        margins[blob == b] = 0.3 + 0.01 * (np.arange(40) * 4 + b)
    return ProxyOutputs(num_rows=blob.size, probs=probs_from_margins(margins), embeddings=x), blob, margins


def test_cluster_margin_spreads_a_batch_that_margin_takes_from_one_blob():
    outputs, blob, _ = uncertain_blob_case()
    plain = build_strategy("margin").select(outputs, 5, seed=0).indices
    assert set(blob[plain].tolist()) == {0}  # the 5 least certain rows are near-duplicates
    spread = build_strategy("cluster_margin").select(outputs, 5, seed=0)
    assert sorted(blob[spread.indices].tolist()) == [0, 1, 2, 3, 4]
    diverse = build_strategy("margin_kmeans").select(outputs, 5, seed=0)
    assert sorted(blob[diverse.indices].tolist()) == [0, 1, 2, 3, 4]


def test_cluster_margin_round_robin_smallest_cluster_first_lowest_margin_within():
    outputs, blob, margins = uncertain_blob_case()
    # 50 candidates: blob 0's 40 rows and 10 from the others (blobs 1, 2: 3 rows each; blobs 3, 4: 2 each)
    result = build_strategy("cluster_margin", clusters=5, candidate_factor=5).select(outputs, 10, seed=0)
    picks = result.indices
    ok = np.ones(blob.size, dtype=bool)
    cand = np.argsort(margins, kind="stable")[:50]
    sizes = np.bincount(blob[cand], minlength=5)
    assert sizes.tolist() == [40, 3, 3, 2, 2]
    # round 1: one row per cluster, smallest first (equal sizes: the lower margin first); round 2 likewise
    order = [3, 4, 1, 2, 0]
    expected = []
    for turn in range(2):
        for b in order:
            rows = cand[blob[cand] == b]
            expected.append(rows[np.argsort(margins[rows], kind="stable")][turn])
    assert picks.tolist() == expected
    np.testing.assert_array_equal(result.scores[picks], np.arange(10))
    assert np.all(result.scores[ok & ~np.isin(np.arange(blob.size), picks)] == 10)
    assert not result.higher_is_better


def test_cluster_margin_candidates_only_and_pool_exhaustion():
    outputs, blob, margins = uncertain_blob_case()
    exclude = np.flatnonzero(blob == 0)[:20]
    labeled = np.flatnonzero(blob == 0)[20:30]
    result = build_strategy("cluster_margin", candidate_factor=2).select(
        outputs, 20, exclude=exclude, labeled=labeled, seed=1
    )
    assert not set(result.indices.tolist()) & (set(exclude.tolist()) | set(labeled.tolist()))
    # every pick is among the 40 lowest-margin candidates
    ok = np.setdiff1d(np.arange(blob.size), np.concatenate([exclude, labeled]))
    cand = ok[np.argsort(margins[ok], kind="stable")[:40]]
    assert set(result.indices.tolist()) <= set(cand.tolist())
    with pytest.raises(PoolExhaustedError, match="171 rows requested, 170 candidate rows left"):
        build_strategy("cluster_margin").select(outputs, 171, exclude=exclude, labeled=labeled)
    assert build_strategy("cluster_margin").select(outputs, 170, exclude=exclude, labeled=labeled).indices.size == 170
    with pytest.raises(ConfigError, match="candidate_factor must be at least 1"):
        build_strategy("cluster_margin", candidate_factor=0.5).select(outputs, 5)
    with pytest.raises(ConfigError, match="needs class probabilities and embeddings"):
        build_strategy("margin_kmeans").select(ProxyOutputs(num_rows=200, probs=outputs.probs), 5)


def typical_case():
    """5 blobs of decreasing size; each a dense core (first 80%) with a sparse halo (the last 20%) around it."""
    sizes = [60, 50, 40, 30, 20]
    x, blob = blobs(sizes, spread=0.05)
    rng = np.random.default_rng(1)
    halo = np.zeros(blob.size, dtype=bool)
    for b, size in enumerate(sizes):
        rows = np.flatnonzero(blob == b)[int(0.8 * size) :]
        halo[rows] = True
        x[rows] += rng.normal(size=(rows.size, DIM)).astype(np.float32)  # ~20x the core's spread
    return ProxyOutputs(num_rows=blob.size, embeddings=x), blob, halo


def test_typiclust_picks_a_typical_row_of_each_cluster_largest_first():
    outputs, blob, halo = typical_case()
    assert build_strategy("typiclust").requires == frozenset({"embeddings"})
    result = build_strategy("typiclust").select(outputs, 5, seed=0)  # no labeled rows, no probabilities
    assert blob[result.indices].tolist() == [0, 1, 2, 3, 4]
    assert not halo[result.indices].any()  # dense-region rows, never the outlying halo
    np.testing.assert_array_equal(result.scores[result.indices], np.arange(5))
    # labeled=None and an empty labeled set are the same cold start
    empty = build_strategy("typiclust").select(outputs, 5, seed=0, labeled=np.array([], dtype=np.int64))
    np.testing.assert_array_equal(result.indices, empty.indices)


def test_typiclust_skips_clusters_that_hold_a_labeled_row_and_never_picks_excluded():
    outputs, blob, halo = typical_case()
    labeled = np.array([np.flatnonzero(blob == 0)[3]])  # the largest blob is covered
    core1 = np.flatnonzero((blob == 1) & ~halo)
    result = build_strategy("typiclust").select(outputs, 4, seed=0, labeled=labeled, exclude=core1)
    assert sorted(blob[result.indices].tolist()) == [1, 2, 3, 4]
    assert not set(result.indices.tolist()) & (set(core1.tolist()) | set(labeled.tolist()))
    assert halo[result.indices[blob[result.indices] == 1]].all()  # blob 1's core is excluded: its halo remains
    # 10 picks, 10 clusters: one per cluster, so every blob is represented
    more = build_strategy("typiclust").select(outputs, 10, seed=0)
    assert set(blob[more.indices].tolist()) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("name", ["cluster_margin", "margin_kmeans", "typiclust"])
def test_seeded_determinism_and_seed_dependence(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, DIM)).astype(np.float32)
    probs = rng.dirichlet(np.ones(3), size=400).astype(np.float32)
    outputs = ProxyOutputs(num_rows=400, probs=probs, embeddings=x)
    first = build_strategy(name).select(outputs, 20, seed=0)
    np.testing.assert_array_equal(first.indices, build_strategy(name).select(outputs, 20, seed=0).indices)
    np.testing.assert_array_equal(first.scores, build_strategy(name).select(outputs, 20, seed=0).scores)
    others = {tuple(build_strategy(name).select(outputs, 20, seed=s).indices) for s in range(1, 5)}
    assert len(others | {tuple(first.indices)}) > 1


def test_kmeans_recovers_separated_blobs_and_is_seeded():
    x, blob = blobs([30, 5, 50, 12])
    centers, labels, d2 = kmeans(x, 4, seed=0)
    assert centers.shape == (4, DIM) and labels.shape == (x.shape[0],)
    # the clusters are the blobs (up to renaming)
    assert len({(a, b) for a, b in zip(blob, labels)}) == 4
    np.testing.assert_allclose(d2, ((x - centers[labels]) ** 2).sum(1), rtol=1e-3, atol=1e-4)
    again = kmeans(x, 4, seed=0)
    np.testing.assert_array_equal(labels, again[1])
    # weights pull a centre towards heavy rows
    w = np.ones(x.shape[0])
    heavy = np.flatnonzero(blob == 0)[0]
    w[heavy] = 1000.0
    weighted, wl, _ = kmeans(x, 4, weights=w, seed=0)
    c = wl[heavy]
    assert np.linalg.norm(weighted[c] - x[heavy]) < np.linalg.norm(centers[labels[heavy]] - x[heavy])


def test_kmeans_with_duplicates_subsampling_and_every_row_assigned_to_its_nearest_centre():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 3)).astype(np.float32)[rng.integers(0, 7, 300)]  # 7 distinct rows
    x[:20] += 5 * rng.normal(size=(20, 3)).astype(np.float32)
    for seed in range(5):
        centers, labels, d2 = kmeans(x, 12, seed=seed, max_points_per_centroid=4)  # Lloyd on a subsample of 48
        full = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
        np.testing.assert_allclose(d2, full.min(1), rtol=1e-3, atol=1e-3)
    same = np.zeros((10, 3), dtype=np.float32)
    _, labels, d2 = kmeans(same, 4, seed=0)  # fewer distinct rows than clusters
    assert np.all(d2 == 0) and np.unique(labels).size == 1
    with pytest.raises(ValueError, match="k must be between 1"):
        kmeans(same, 11)


def test_knn_spread_matches_brute_force_in_both_paths():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    labels = np.minimum(rng.integers(0, 12, 600), 10)  # cluster 10 is twice as large; add a singleton
    labels[0] = 11
    import torch

    expected = np.full(600, np.inf)
    for c in range(12):
        m = np.flatnonzero(labels == c)
        d = np.sqrt(((x[m, None] - x[None, m]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        k = min(20, m.size - 1)
        if k:
            expected[m] = np.sort(d, axis=1)[:, :k].mean(1)
    for block in (1024, 50):  # batched small clusters; every cluster on its own
        got = knn_spread(torch.as_tensor(x), labels, 20, rng, block=block)
        np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_cluster_sums_one_hot_products_match_index_add():
    import torch

    from svp_hf.strategies.clustering import cluster_sums

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(500, 6)).astype(np.float32))
    w = torch.as_tensor(rng.random(500).astype(np.float32))
    labels = torch.as_tensor(rng.integers(0, 9, 500))  # cluster 9 stays empty
    sums, mass = cluster_sums(x, w, labels, 10, one_hot=False)
    sums2, mass2 = cluster_sums(x, w, labels, 10, one_hot=True, chunk_elements=300)  # the GPU path, in blocks
    torch.testing.assert_close(sums, sums2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mass, mass2, rtol=1e-5, atol=1e-5)
    assert float(mass[9]) == 0.0
