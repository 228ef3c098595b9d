import numpy as np
import pytest

from svp_hf import PoolExhaustedError, ProxyOutputs, build_strategy, select
from svp_hf.strategies import greedy_k_centers


def brute_force_k_centers(x, n, centers, exclude, first=None):
    """O(N^2) reference: the full distance matrix, then farthest-first."""
    x = x.astype(np.float64)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    chosen = list(centers)
    picks = []
    if not chosen:
        picks.append(first)
        chosen.append(first)
    while len(picks) < n:
        min_d = dist[:, chosen].min(axis=1)
        min_d[chosen] = -1
        min_d[exclude] = -1
        nxt = int(np.argmax(min_d))
        picks.append(nxt)
        chosen.append(nxt)
    return np.array(picks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_from_labeled_centres(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    centers = rng.choice(300, size=20, replace=False)
    exclude = np.setdiff1d(rng.choice(300, size=15, replace=False), centers)
    ours, scores = greedy_k_centers(x, 40, centers=centers, exclude=exclude, seed=seed, chunk_elements=1000)
    ref = brute_force_k_centers(x, 40, list(centers), exclude)
    np.testing.assert_array_equal(ours, ref)
    assert not set(ours.tolist()) & (set(centers.tolist()) | set(exclude.tolist()))
    picked = scores[ours]
    assert np.all(np.diff(picked) <= 1e-5)  # farthest-first: pick distances never increase
    np.testing.assert_allclose(scores[centers], 0, atol=1e-3)


def test_core_set_mode_starts_from_a_random_row_and_matches_brute_force():
    x = np.random.default_rng(5).normal(size=(200, 4)).astype(np.float32)
    ours, scores = greedy_k_centers(x, 25, seed=3)
    assert np.isinf(scores[ours[0]])
    np.testing.assert_array_equal(ours, brute_force_k_centers(x, 25, [], [], first=int(ours[0])))
    starts = {int(greedy_k_centers(x, 1, seed=s)[0][0]) for s in range(20)}
    assert len(starts) > 10  # the first centre is random, not row 0


def test_duplicates_are_tie_broken_at_random_and_exhaustion_is_an_error():
    x = np.zeros((50, 3), dtype=np.float32)  # every row identical: all distances tie at 0
    picks = {tuple(greedy_k_centers(x, 3, centers=np.array([0]), seed=s)[0]) for s in range(10)}
    assert len(picks) > 1
    with pytest.raises(PoolExhaustedError, match="50 rows requested, 49 candidate rows left"):
        greedy_k_centers(x, 50, centers=np.array([0]))


def test_strategy_uses_labeled_rows_as_centres():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(100, 5)).astype(np.float32)
    outputs = ProxyOutputs(num_rows=100, embeddings=emb)
    labeled = np.arange(10)
    exclude = np.zeros(100, dtype=bool)
    exclude[labeled] = True
    exclude[50] = True  # e.g. an empty text: excluded but not a centre
    result = build_strategy("kcenters").select(outputs, 10, exclude=exclude, seed=0, labeled=labeled)
    ref = brute_force_k_centers(emb, 10, list(labeled), [50])
    np.testing.assert_array_equal(result.indices, ref)


def test_kcenters_through_select_with_both_proxies(ag_small):
    labeled = np.arange(0, 1200, 10)
    for proxy in ("fasttext", "tfidf"):
        result = select(ag_small, proxy=proxy, strategy="kcenters", budget=50, labeled_indices=labeled,
                        proxy_kwargs={"epochs": 5})  # fmt: skip
        assert len(set(result.indices.tolist())) == 50
        assert not set(result.indices.tolist()) & set(labeled.tolist())
        assert np.all(np.diff(result.dataset["svp_score"]) <= 1e-5)
