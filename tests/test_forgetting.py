import json
import subprocess
import sys

import datasets
import numpy as np
import pytest

from svp_hf import ProxyError, ProxyOutputs, build_strategy, coreset, select
from svp_hf.proxies import FastTextProxy
from svp_hf.strategies import forgetting_counts


def test_forgetting_counts_by_hand():
    # rows:       0: learned, forgotten twice   1: always right   2: never right   3: unlabeled, flips 3 times
    preds = np.array(
        [
            [1, 0, 2, 0],
            [0, 0, 2, 1],
            [1, 0, 2, 0],
            [0, 0, 2, 1],
            [1, 0, 2, 1],
        ]
    )
    labels = np.array([1, 0, 1, -1])
    counts = forgetting_counts(preds, labels)
    assert counts.dtype == np.float32
    assert counts.tolist() == [2.0, 0.0, np.inf, 3.0]


def test_never_learned_rows_rank_first_with_random_ties():
    outputs = ProxyOutputs(num_rows=6, forgetting=np.array([0, np.inf, 1, 0, np.inf, 1], dtype=np.float32))
    picks = [tuple(build_strategy("forgetting_events").select(outputs, 4, seed=s).indices) for s in range(20)]
    assert all(set(p[:2]) == {1, 4} and set(p[2:]) == {2, 5} for p in picks)
    assert len(set(picks)) > 1  # ties broken at random


def test_easiest_order_keeps_the_least_forgotten_rows_and_never_learned_ones_last():
    outputs = ProxyOutputs(num_rows=6, forgetting=np.array([0, np.inf, 1, 0, np.inf, 1], dtype=np.float32))
    strategy = build_strategy("forgetting_events", order="easiest")
    picks = [tuple(strategy.select(outputs, 6, seed=s).indices) for s in range(20)]
    assert all(set(p[:2]) == {0, 3} and set(p[2:4]) == {2, 5} and set(p[4:]) == {1, 4} for p in picks)
    assert not strategy.select(outputs, 6, seed=0).higher_is_better


def test_coreset_keeps_the_easiest_rows_when_asked(ag_small):
    hardest = coreset(ag_small, keep=0.3, proxy="tfidf", strategy="forgetting_events", seed=0)
    easiest = coreset(
        ag_small, keep=0.3, proxy="tfidf", strategy="forgetting_events", strategy_kwargs={"order": "easiest"}, seed=0
    )
    assert len(easiest) == len(hardest) == round(0.3 * ag_small.num_rows)
    kept_easy = np.asarray(easiest.dataset["svp_score"])
    kept_hard = np.asarray(hardest.dataset["svp_score"])
    assert np.all(np.diff(kept_easy) >= 0)  # least forgotten first
    # every kept row is at most as forgotten as every row left out, and the two kept sets are far apart
    pool_scores = np.asarray(easiest.scores)
    left_out = np.setdiff1d(np.arange(ag_small.num_rows), easiest.indices)
    assert kept_easy.max() <= pool_scores[left_out].min()
    assert np.isfinite(kept_easy).all() and kept_easy.mean() < kept_hard.mean()
    assert easiest.selection_config()["higher_score_is_better"] is False
    assert easiest.selection_config()["config"]["strategy_kwargs"] == {"order": "easiest"}


@pytest.mark.parametrize("proxy", ["fasttext", "tfidf"])
def test_proxies_record_one_prediction_row_per_epoch(ag_small, proxy):
    kwargs = {"epochs": 4} if proxy == "fasttext" else {"observe_epochs": 4}
    result = select(ag_small, proxy=proxy, strategy="forgetting_events", budget=0.5, proxy_kwargs=kwargs)
    preds = result.proxy.epoch_predictions
    assert preds.shape == (4, 1200)
    assert (preds[-1] == result.proxy.predict_proba(ag_small).argmax(1)).mean() > 0.9
    expected = forgetting_counts(preds, np.array(ag_small["label"]))
    np.testing.assert_array_equal(result.scores, expected)
    assert len(set(result.indices.tolist())) == 600
    picked = result.scores[result.indices]
    assert picked.min() >= np.delete(result.scores, result.indices).max()


def test_fasttext_observed_fit_ends_with_the_plain_model(ag_small):
    plain = FastTextProxy(seed=0, epochs=3).fit(ag_small)
    observed = FastTextProxy(seed=0, epochs=3).fit(ag_small, observe=ag_small.select(range(100)))
    np.testing.assert_array_equal(plain.predict_proba(ag_small), observed.predict_proba(ag_small))


def test_forgetting_in_active_learning_scores_unlabeled_rows_by_prediction_flips(ag_small):
    labeled = np.arange(0, 1200, 6)
    result = select(ag_small, proxy="tfidf", strategy="forgetting_events", budget=50, labeled_indices=labeled)
    preds = result.proxy.epoch_predictions
    flips = (preds[1:] != preds[:-1]).sum(0)
    unlabeled = np.setdiff1d(np.arange(1200), labeled)
    np.testing.assert_array_equal(result.scores[unlabeled], flips[unlabeled])
    assert not set(result.indices.tolist()) & set(labeled.tolist())


def test_a_proxy_that_cannot_be_observed_is_a_clear_error(ag_small, monkeypatch):
    monkeypatch.setattr(FastTextProxy, "observable", False)
    with pytest.raises(ProxyError, match="cannot be observed epoch by epoch.*use one of: .*precomputed, tfidf"):
        coreset(ag_small, keep=0.5, proxy="fasttext", strategy="forgetting_events")


@pytest.mark.parametrize("strategy", ["forgetting_events", "kcenters"])
def test_coreset_cli_on_real_ag_news(ag_news_path, tmp_path, strategy):
    out = tmp_path / "kept"
    done = subprocess.run(
        [sys.executable, "-m", "svp_hf", "coreset", "--dataset", str(ag_news_path), "--split", "train", "--proxy",
         "fasttext", "--strategy", strategy, "--keep", "0.5", "--output-dir", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Kept 7592 of 15183 rows")
    kept = datasets.load_from_disk(str(out))
    assert kept.num_rows == round(0.5 * 15183) == 7592
    assert len(set(kept["svp_pool_index"])) == 7592
    config = json.loads((out / "selection_config.json").read_text())
    assert config["num_labeled"] == 0 and config["config"]["strategy"] == strategy
