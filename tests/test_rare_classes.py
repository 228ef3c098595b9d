"""Rare-class hunting (`svp_hf.strategies.balance`) and `cluster_margin` with it, on arrays and on a real pool."""

import numpy as np

from svp_hf import ProxyOutputs, build_strategy
from svp_hf.strategies.balance import balancing_quota, hunt_rare_classes, rare_classes


def test_balancing_quota_evens_out_the_counts():
    assert balancing_quota(np.array([64, 64, 66, 6]), 200).tolist() == [36, 36, 34, 94]  # every class ends at 100
    assert balancing_quota(np.array([10, 0]), 5).tolist() == [0, 5]  # not enough to reach the other class
    assert balancing_quota(np.array([0, 0, 0]), 4).tolist() == [2, 1, 1]  # the leftover row to the first class
    assert balancing_quota(np.array([5, 5]), 0).tolist() == [0, 0]


def test_balancing_quota_properties():
    rng = np.random.default_rng(0)
    for _ in range(500):
        counts = rng.integers(0, 50, size=rng.integers(1, 10))
        n = int(rng.integers(0, 300))
        quota = balancing_quota(counts, n)
        assert quota.sum() == n and (quota >= 0).all()
        after = counts + quota
        raised = quota > 0
        if raised.any():  # no raised class ends more than one row above any class (water-filling)
            assert after[raised].max() <= after.min() + 1


def test_rare_classes_threshold():
    counts = np.array([50, 50, 50, 6])  # mean 39
    assert rare_classes(counts, 0.5).tolist() == [3]
    assert rare_classes(counts, 0.1).tolist() == []
    assert rare_classes(counts, 0).tolist() == []
    assert rare_classes(np.array([0, 0]), 0.5).tolist() == []  # nothing labeled yet: no class is rare


def test_no_class_is_rare_while_the_mean_count_is_small():
    """With a few labels per class (Banking77's 77 classes after 200 random rows: 2.6 each) a class with 0 or 1 rows
    is chance, not a rare class; ``min_mean`` holds hunting back until the mean count reaches it."""
    few = np.array([3, 4, 1, 0, 3, 2])  # mean 2.2
    assert rare_classes(few, 0.5).tolist() == [2, 3]
    assert rare_classes(few, 0.5, min_mean=10).tolist() == []
    assert rare_classes(np.array([50, 50, 50, 6]), 0.5, min_mean=10).tolist() == [3]  # mean 39: rare indeed


def imbalanced_case(seed=0):
    """400 rows, 3 classes; class 2 is labeled twice against 40 for the others and never the proxy's top class,
    but the proxy gives its 20 true rows (rows 380-399) a higher probability of it than any other row."""
    rng = np.random.default_rng(seed)
    n = 400
    truth = np.repeat([0, 1, 2], [190, 190, 20])
    probs = np.full((n, 3), 0.0)
    top = np.where(truth == 2, rng.integers(0, 2, n), truth)
    probs[np.arange(n), top] = rng.uniform(0.5, 0.9, n)
    probs[:, 2] += np.where(truth == 2, 0.3, rng.uniform(0.0, 0.2, n))
    other = 1 - top
    probs[np.arange(n), other] = np.clip(1 - probs.sum(1), 0.01, None)
    probs /= probs.sum(1, keepdims=True)
    assert (probs.argmax(1) != 2).all()
    labels = np.full(n, -1)
    labeled = np.concatenate([np.arange(0, 40), np.arange(190, 230), [380, 381]])
    labels[labeled] = truth[labeled]
    x = rng.normal(size=(n, 8)).astype(np.float32)
    return ProxyOutputs(num_rows=n, probs=probs.astype(np.float32), embeddings=x, labels=labels), truth, labeled


def test_hunting_takes_the_rare_class_s_most_likely_rows_first():
    outputs, truth, labeled = imbalanced_case()
    ok = np.ones(outputs.num_rows, dtype=bool)
    ok[labeled] = False
    picks = np.flatnonzero(ok)[:30]  # a batch of 30 with no row predicted as class 2
    hunted = hunt_rare_classes(picks, outputs.probs, outputs.labels, ok, 0.5)
    counts = np.array([40, 40, 2])
    quota = balancing_quota(counts, 30)[2]
    assert quota == 30  # the whole batch would go to class 2 to even the counts out
    expected = np.flatnonzero(ok)[np.argsort(-outputs.probs[ok, 2], kind="stable")][:30]
    assert hunted.tolist() == expected.tolist()
    assert set(hunted.tolist()) >= set(range(382, 400))  # all 18 unlabeled rows of the rare class
    assert len(set(hunted.tolist())) == 30 and ok[hunted].all()


def test_hunting_leaves_balanced_or_unknown_labels_alone():
    outputs, truth, labeled = imbalanced_case()
    ok = np.ones(outputs.num_rows, dtype=bool)
    ok[labeled] = False
    picks = np.flatnonzero(ok)[:30]
    even = np.full(outputs.num_rows, -1)
    even[[0, 1, 190, 191, 380, 381]] = truth[[0, 1, 190, 191, 380, 381]]
    assert hunt_rare_classes(picks, outputs.probs, even, ok, 0.5).tolist() == picks.tolist()
    assert hunt_rare_classes(picks, outputs.probs, None, ok, 0.5).tolist() == picks.tolist()
    assert hunt_rare_classes(picks, outputs.probs, outputs.labels, ok, 0).tolist() == picks.tolist()


def test_hunting_counts_the_picks_already_predicted_as_the_rare_class():
    probs = np.tile(np.array([[0.6, 0.3, 0.1]], dtype=np.float32), (20, 1))
    probs[0] = [0.1, 0.2, 0.7]  # the batch holds one row predicted as class 2
    probs[10:, 2] = np.linspace(0.3, 0.2, 10)  # rows 10, 11, ...: the next most likely rows of class 2
    probs[10:, 0] = 0.7 - probs[10:, 2]
    labels = np.full(20, -1)
    labels[[15, 16, 17, 18, 19]] = [0, 0, 1, 1, 2]  # class 2: 1 row against a mean of 5/3, rare below 0.8
    ok = labels < 0
    assert balancing_quota(np.array([2, 2, 1]), 2).tolist() == [0, 0, 2]
    # two rows for class 2, one in the batch already: one more, the next most likely (row 10), in front
    assert hunt_rare_classes(np.array([0, 1]), probs, labels, ok, 0.8).tolist() == [10, 0]
    assert balancing_quota(np.array([2, 2, 1]), 1).tolist() == [0, 0, 1]
    assert hunt_rare_classes(np.array([0]), probs, labels, ok, 0.8).tolist() == [0]  # its one row is there
    assert hunt_rare_classes(np.array([1]), probs, labels, ok, 0.8).tolist() == [0]  # the most likely one


def test_cluster_margin_hunts_rare_classes_by_default_and_not_with_rare_below_0():
    outputs, truth, labeled = imbalanced_case()
    plain = build_strategy("cluster_margin", rare_below=0).select(outputs, 30, seed=0, labeled=labeled)
    hunted = build_strategy("cluster_margin").select(outputs, 30, seed=0, labeled=labeled)
    assert (truth[plain.indices] == 2).sum() < 5
    assert (truth[hunted.indices] == 2).sum() == 18  # every unlabeled rare row
    assert not np.isin(hunted.indices, labeled).any() and len(set(hunted.indices.tolist())) == 30
    np.testing.assert_array_equal(hunted.scores[hunted.indices], np.arange(30))
    no_labels = ProxyOutputs(num_rows=outputs.num_rows, probs=outputs.probs, embeddings=outputs.embeddings)
    again = build_strategy("cluster_margin").select(no_labels, 30, seed=0, labeled=labeled)
    assert again.indices.tolist() == plain.indices.tolist()
    # 82 labels over 3 classes (27 each on average): under a rare_min_mean of 30 no class is rare yet
    held = build_strategy("cluster_margin", rare_min_mean=30).select(outputs, 30, seed=0, labeled=labeled)
    assert held.indices.tolist() == plain.indices.tolist()


def test_selection_passes_the_labeled_classes_to_the_strategy(ag_small, fresh_cache):
    """`select` tells the strategy the class of every labeled row (the oracle's labels where given), -1 elsewhere."""
    import svp_hf
    from svp_hf.strategies import Strategy

    seen = {}

    class Recording(Strategy):
        name = "recording"

        def select(self, outputs, n, *, exclude=None, seed=0, labeled=None):
            seen["labels"] = outputs.labels
            return build_strategy("margin").select(outputs, n, exclude=exclude, seed=seed)

    y = np.asarray(ag_small["label"])
    labeled = np.arange(0, 400, 4)
    svp_hf.select(ag_small, proxy="tfidf", strategy=Recording(), budget=10, seed=0, labeled_indices=labeled)
    expected = np.full(ag_small.num_rows, -1)
    expected[labeled] = y[labeled]
    np.testing.assert_array_equal(seen["labels"], expected)
    oracle = (y[labeled] + 1) % 4  # labels from an oracle win over the pool's column
    svp_hf.select(
        ag_small, proxy="tfidf", strategy=Recording(), budget=10, seed=0, labeled_indices=labeled, labels=oracle
    )
    assert seen["labels"][labeled].tolist() == oracle.tolist()


def test_spread_hunting_covers_every_region_of_the_rare_class():
    """The rare class's likely rows lie in two far-apart blobs, one of them more likely: plain hunting takes the
    top rows (all from one blob), ``spread`` takes the most likely row of each group of its 3·k most likely rows."""
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[100:110] += 50  # blob A: p(rare) 0.40-0.31
    x[110:120] -= 50  # blob B: p(rare) 0.30-0.21
    probs = np.full((n, 2), 0.95, dtype=np.float32)
    probs[:, 1] = 0.05
    probs[100:120, 1] = np.linspace(0.40, 0.21, 20)
    probs[:, 0] = 1 - probs[:, 1]
    labels = np.full(n, -1)
    labels[:40] = 0
    labels[40] = 1  # class 1: 1 labeled row against 40
    ok = labels < 0
    picks = np.arange(41, 47)  # a batch of 6, none predicted as class 1
    assert balancing_quota(np.array([40, 1]), 6).tolist() == [0, 6]
    plain = hunt_rare_classes(picks, probs, labels, ok, 0.5, embeddings=x)  # spread 0: the 6 most likely
    assert plain.tolist() == list(range(100, 106))
    spread = hunt_rare_classes(picks, probs, labels, ok, 0.5, embeddings=x, spread=3, seed=0)
    assert len(set(spread.tolist())) == 6 and set(spread.tolist()) <= set(range(100, 118))
    assert (spread < 110).any() and (spread >= 110).any()  # both blobs
    assert (np.diff(probs[spread, 1]) <= 0).all()  # most likely first


def test_cluster_margin_does_not_hunt_from_a_few_random_labels_per_class():
    """Banking77's regression: a random start leaves classes with 0 or 1 of ~2.6 rows, which is chance; the default
    picks equal the picks without hunting there, and hunting starts once the labeled rows average 10 per class."""
    rng = np.random.default_rng(0)
    n, classes = 2000, 20
    logits = rng.normal(size=(n, classes)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    outputs_for = {}
    for per_class in (2.6, 12):
        labeled = rng.choice(n, size=int(per_class * classes), replace=False)
        labels = np.full(n, -1)
        labels[labeled] = rng.integers(0, classes, labeled.size)
        labels[labeled[:3]] = 0  # class 19 is kept unlabeled, so it is under half the mean in both cases
        labels[labels == 19] = 0
        outputs_for[per_class] = (ProxyOutputs(num_rows=n, probs=probs.astype(np.float32),
                                               embeddings=rng.normal(size=(n, 8)).astype(np.float32),
                                               labels=labels), labeled)  # fmt: skip
    for per_class, expect_hunt in ((2.6, False), (12, True)):
        outputs, labeled = outputs_for[per_class]
        plain = build_strategy("cluster_margin", rare_below=0).select(outputs, 100, seed=0, labeled=labeled)
        default = build_strategy("cluster_margin").select(outputs, 100, seed=0, labeled=labeled)
        assert (default.indices.tolist() != plain.indices.tolist()) == expect_hunt, per_class
