import numpy as np
import pytest

from svp_hf import STRATEGIES, PoolExhaustedError, ProxyOutputs, RegistryError, argselect, build_strategy
from svp_hf.registry import Registry
from svp_hf.strategies import entropy_scores, least_confidence_scores, margin_scores


def random_outputs(n=200, c=4, seed=0):
    probs = np.random.default_rng(seed).dirichlet(np.ones(c) * 0.5, size=n).astype(np.float32)
    forgetting = np.random.default_rng(seed + 1).integers(0, 4, size=n).astype(np.float32)
    forgetting[::17] = np.inf
    return ProxyOutputs(num_rows=n, probs=probs, embeddings=probs @ np.ones((c, 3), np.float32), forgetting=forgetting)


# One row per registered strategy: adding a strategy means adding it here.
CONTRACT = {
    "cluster_margin": {},
    "entropy": {},
    "forgetting_events": {},
    "kcenters": {},
    "least_confidence": {},
    "margin": {},
    "margin_kmeans": {},
    "random": {},
    "typiclust": {},
}


def test_contract_table_covers_every_registered_strategy():
    assert sorted(CONTRACT) == STRATEGIES.names()


# The strategies ranking by a per-row score take order="easiest"; the contract holds in that direction too.
ORDERED = ["entropy", "forgetting_events", "least_confidence", "margin"]


@pytest.mark.parametrize(
    "name, kwargs",
    [(name, CONTRACT[name]) for name in sorted(CONTRACT)] + [(name, {"order": "easiest"}) for name in ORDERED],
)
def test_strategy_contract(name, kwargs):
    outputs = random_outputs()
    exclude = np.zeros(outputs.num_rows, dtype=bool)
    exclude[::3] = True
    strategy = build_strategy(name, **kwargs)
    result = strategy.select(outputs, 50, exclude=exclude, seed=0)
    assert result.indices.dtype == np.int64 and result.indices.shape == (50,)
    assert len(set(result.indices.tolist())) == 50
    assert result.indices.min() >= 0 and result.indices.max() < outputs.num_rows
    assert not exclude[result.indices].any()
    assert result.scores.shape == (outputs.num_rows,) and result.scores.dtype == np.float32
    # most valuable first: the picked scores are sorted in the strategy's direction
    picked = result.scores[result.indices]
    ordered = -picked if result.higher_is_better else picked
    assert np.all(ordered[:-1] <= ordered[1:])  # (not np.diff: scores may be inf)
    # and nothing left out beats the last pick
    rest = np.setdiff1d(np.flatnonzero(~exclude), result.indices)
    if result.higher_is_better:
        assert result.scores[rest].max() <= picked.min()
    else:
        assert result.scores[rest].min() >= picked.max()
    again = strategy.select(outputs, 50, exclude=exclude, seed=0)
    np.testing.assert_array_equal(result.indices, again.indices)
    with pytest.raises(PoolExhaustedError, match="133 candidate rows left"):
        strategy.select(outputs, 134, exclude=exclude, seed=0)
    assert strategy.select(outputs, 133, exclude=exclude, seed=0).indices.size == 133


def test_entropy_hand_computed_with_exact_zeros():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0]])
    scores = entropy_scores(probs)
    assert not np.isnan(scores).any()
    np.testing.assert_allclose(scores, [0.0, np.log(2), np.log(3), 0.0], atol=1e-12)
    # the most confident rows must rank last, not first (the reference's NaN entropy did the opposite)
    picked = build_strategy("entropy").select(ProxyOutputs(num_rows=4, probs=probs), 2, seed=0).indices
    assert picked.tolist() == [2, 1]


def test_least_confidence_and_margin_hand_computed():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [0.5, 0.3, 0.2], [0.34, 0.33, 0.33]])
    np.testing.assert_allclose(least_confidence_scores(probs), [0.7, 0.4, 0.5, 0.34])
    np.testing.assert_allclose(margin_scores(probs), [0.5, 0.0, 0.2, 0.01], atol=1e-12)
    outputs = ProxyOutputs(num_rows=4, probs=probs)
    assert build_strategy("least_confidence").select(outputs, 4, seed=0).indices.tolist() == [3, 1, 2, 0]
    assert build_strategy("margin").select(outputs, 4, seed=0).indices.tolist() == [1, 3, 2, 0]


def test_easiest_order_ranks_each_score_the_other_way():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [0.5, 0.3, 0.2], [0.34, 0.33, 0.33]])
    outputs = ProxyOutputs(num_rows=4, probs=probs)
    for name, hardest in [("least_confidence", [3, 1, 2, 0]), ("margin", [1, 3, 2, 0]), ("entropy", [3, 1, 2, 0])]:
        strategy = build_strategy(name)
        assert strategy.kwargs == {"order": "hardest"}
        assert strategy.select(outputs, 4, seed=0).indices.tolist() == hardest
        easiest = build_strategy(name, order="easiest").select(outputs, 4, seed=0)
        assert easiest.indices.tolist() == hardest[::-1], name
        # the result says the direction it ranked in, so the provenance columns read the same either way
        assert easiest.higher_is_better == (not build_strategy(name).higher_is_better)


def test_an_unknown_order_names_the_two_valid_ones():
    from svp_hf import ConfigError

    with pytest.raises(ConfigError, match="order must be 'hardest' .* or 'easiest' .*got 'easy'"):
        build_strategy("margin", order="easy")
    with pytest.raises(ConfigError, match="unknown kcenters strategy argument.*'order'"):
        build_strategy("kcenters", order="easiest")  # farthest-first has no easy end


def test_a_score_strategy_subclass_with_its_own_defaults_keeps_the_order_argument():
    from svp_hf.strategies import ScoreStrategy

    class Scaled(ScoreStrategy):
        name = "scaled_confidence"
        higher_is_better = False
        defaults = {"scale": 2.0}
        score = staticmethod(least_confidence_scores)

    assert Scaled.defaults == {"order": "hardest", "scale": 2.0}
    assert Scaled(order="easiest", scale=1.0).kwargs == {"order": "easiest", "scale": 1.0}


def test_margin_ties_are_broken_at_random_not_by_index():
    probs = np.tile([[0.5, 0.5]], (100, 1))  # every row ties at margin 0
    outputs = ProxyOutputs(num_rows=100, probs=probs)
    picks = [build_strategy("margin").select(outputs, 10, seed=s).indices for s in range(300)]
    assert picks[0].tolist() != list(range(10))
    counts = np.bincount(np.concatenate(picks), minlength=100)
    # 3000 picks over 100 rows: each row expects 30; index order would give 300 to rows 0..9 and 0 elsewhere
    assert counts.min() > 10 and counts.max() < 60


def test_argselect_nan_ranks_last_and_exclude_forms():
    scores = np.array([0.1, np.nan, 0.9, 0.5])
    assert argselect(scores, 4, higher_is_better=True, rng=0).tolist() == [2, 3, 0, 1]
    assert argselect(scores, 4, higher_is_better=False, rng=0).tolist() == [0, 3, 2, 1]
    assert argselect(scores, 2, higher_is_better=True, exclude=np.array([2]), rng=0).tolist() == [3, 0]
    mask = np.array([False, False, True, True])
    assert argselect(scores, 1, higher_is_better=True, exclude=mask, rng=0).tolist() == [0]
    with pytest.raises(PoolExhaustedError):
        argselect(scores, 3, higher_is_better=True, exclude=mask, rng=0)


def test_random_strategy_needs_no_proxy_outputs():
    result = build_strategy("random").select(ProxyOutputs(num_rows=1000), 100, seed=3)
    assert len(set(result.indices.tolist())) == 100
    other = build_strategy("random").select(ProxyOutputs(num_rows=1000), 100, seed=4)
    assert set(result.indices.tolist()) != set(other.indices.tolist())


def test_random_selects_from_a_pool_whose_label_column_is_all_null(tmp_path):
    """Regression (issue 14): random needs no labels and trains no proxy, yet a pool whose label column was all null
    (an unlabeled pool with the column already added) was refused while building the task, which only counts classes
    for random."""
    import subprocess
    import sys

    import datasets

    import svp_hf

    texts = [f"an unlabeled document number {i}" for i in range(30)]
    pools = {
        "null": datasets.Dataset.from_dict({"text": texts, "label": [None] * 30}),
        "int": datasets.Dataset.from_dict(
            {"text": texts, "label": [None] * 30},
            features=datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")}),
        ),
        "string": datasets.Dataset.from_dict(
            {"text": texts, "label": [None] * 30},
            features=datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("string")}),
        ),
    }
    for kind, pool in pools.items():
        result = svp_hf.select(pool, strategy="random", budget=5, seed=0)
        assert len(set(result.indices.tolist())) == 5 and result.proxy is None, kind
        assert result.class_counts is None
        again = svp_hf.select(pool, proxy="tfidf", strategy="random", budget=5, labeled_indices=[0, 1])
        assert not {0, 1} & set(again.indices.tolist())
    # a strategy whose proxy trains on the labels still says why it cannot
    with pytest.raises(svp_hf.LabelError, match="0 class"):
        svp_hf.select(pools["string"], proxy="tfidf", strategy="margin", budget=5)
    pools["null"].to_parquet(str(tmp_path / "pool.parquet"))
    done = subprocess.run(
        [sys.executable, "-m", "svp_hf", "select", "--dataset", str(tmp_path / "pool.parquet"), "--split", "train",
         "--strategy", "random", "--budget", "5", "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert datasets.load_from_disk(str(tmp_path / "out")).num_rows == 5


def test_forgetting_events_without_forgetting_counts_names_the_proxies_that_record_them():
    from svp_hf import ConfigError

    with pytest.raises(ConfigError, match=r"forgetting_events' needs forgetting counts.*: .*fasttext.*, tfidf"):
        build_strategy("forgetting_events").select(ProxyOutputs(num_rows=10, probs=np.full((10, 2), 0.5)), 3)


def test_forgetting_events_warns_when_the_counts_cannot_rank(ag_small, caplog):
    """Regression (issue 14): a proxy that recorded one epoch has no forgetting events to count, so every candidate
    scored 0 and the pick was the tie-break alone, silently."""
    import logging

    import svp_hf

    pool = ag_small.select(range(300))
    kwargs = {"observe_epochs": 1, "self_check": False}
    with caplog.at_level(logging.WARNING, logger="svp_hf"):
        result = svp_hf.select(pool, proxy="tfidf", strategy="forgetting_events", budget=20, proxy_kwargs=kwargs,
                               labeled_indices=list(range(0, 300, 3)))  # fmt: skip
    assert result.proxy.epoch_predictions.shape[0] == 1
    message = "all 200 candidate rows have the same forgetting count (0), so the 20 picked are a random draw"
    assert message in caplog.text
    assert "fewer than two epochs (raise observe_epochs" in caplog.text
    # counts that rank (the contract table's outputs) warn nothing; only ties among the candidates count
    caplog.clear()
    outputs = random_outputs()
    with caplog.at_level(logging.WARNING, logger="svp_hf"):
        build_strategy("forgetting_events").select(outputs, 20, exclude=np.arange(0, 200, 2), seed=0)
        tied = ProxyOutputs(num_rows=6, forgetting=np.array([0, 0, 0, 0, 2, 1], dtype=np.float32))
        build_strategy("forgetting_events").select(tied, 1, exclude=np.array([4, 5]))  # 4 candidates tie: warned
    assert caplog.text.count("same forgetting count") == 1


def test_registry_validates_names_and_rejects_duplicates():
    reg = Registry("thing")
    reg.register("good_name")(type("A", (), {}))
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("good_name")
    for bad in ("Bad", "with-dash", "", "1x"):
        with pytest.raises(RegistryError, match="snake_case"):
            reg.register(bad)
    with pytest.raises(RegistryError, match="Did you mean 'entropy'"):
        STRATEGIES.get("entropi")
    with pytest.raises(RegistryError, match="already registered"):
        STRATEGIES.register("entropy")


def test_unknown_strategy_kwargs_are_rejected():
    from svp_hf import ConfigError

    with pytest.raises(ConfigError, match="unknown entropy strategy argument"):
        build_strategy("entropy", temperature=2.0)
