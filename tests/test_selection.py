import json
import logging

import datasets
import numpy as np
import pytest

import svp_hf
from svp_hf import (
    BudgetError,
    DatasetTypeError,
    EmptyPoolError,
    OutputExistsError,
    PoolExhaustedError,
    SelectionConfig,
    select,
)

FAST = {"fasttext": {"epochs": 5}, "tfidf": {}}


@pytest.mark.parametrize("proxy", sorted(FAST))
@pytest.mark.parametrize("strategy", ["entropy", "least_confidence", "margin"])
def test_core_set_selection_returns_provenance(ag_small, proxy, strategy):
    config = SelectionConfig(proxy=proxy, strategy=strategy, budget=0.1, seed=0, proxy_kwargs=FAST[proxy])
    result = select(ag_small, config)
    ds = result.dataset
    assert ds.num_rows == 120 == len(result.indices)
    assert ds.column_names == ["text", "label", "svp_pool_index", "svp_score", "svp_rank"]
    assert ds["svp_pool_index"] == result.indices.tolist()
    assert len(set(ds["svp_pool_index"])) == 120
    assert ds["svp_rank"] == list(range(120))
    assert ds["text"] == ag_small.select(result.indices)["text"]
    np.testing.assert_allclose(ds["svp_score"], result.scores[result.indices], rtol=1e-6)
    assert result.scores.shape == (1200,)
    # the one-time pool features and the self-check are timed apart from the fit
    assert {"proxy_fit", "proxy_score", "strategy", "total"} <= set(result.timings)
    assert set(result.timings) <= {"proxy_fit", "proxy_check", "proxy_features", "proxy_score", "strategy", "total"}
    assert "proxy_check" in result.timings and result.proxy.self_check["rows"] == 1200
    assert result.timings["proxy_fit"] > 0
    # deterministic: the same rows in the same order
    np.testing.assert_array_equal(select(ag_small, config).indices, result.indices)


def test_selection_from_a_labeled_subset_never_picks_labeled_rows(ag_small):
    labeled = np.arange(0, 1200, 4)  # 300 labeled rows
    result = select(ag_small, proxy="tfidf", strategy="margin", budget=100, labeled_indices=labeled)
    assert not set(result.indices.tolist()) & set(labeled.tolist())
    assert result.num_labeled == 300
    with pytest.raises(PoolExhaustedError, match="901 rows requested, 900 selectable rows left"):
        select(ag_small, proxy="tfidf", strategy="margin", budget=901, labeled_indices=labeled)


def test_uncertainty_beats_random_at_finding_proxy_errors(ag_small):
    """Entropy picks rows the proxy gets wrong far more often than random picks do."""
    labeled = np.arange(0, 1200, 4)
    unc = select(ag_small, proxy="tfidf", strategy="entropy", budget=200, labeled_indices=labeled)
    rnd = select(ag_small, proxy="tfidf", strategy="random", budget=200, labeled_indices=labeled, seed=1)
    proxy = svp_hf.build_proxy("tfidf").fit(ag_small.select(labeled))
    probs = proxy.predict_proba(ag_small)
    wrong = probs.argmax(1) != np.array(ag_small["label"])
    assert wrong[unc.indices].mean() > wrong[rnd.indices].mean() + 0.1


def test_random_needs_no_proxy(ag_small):
    result = select(ag_small, strategy="random", budget=50, seed=3)
    assert result.proxy is None and result.timings["proxy_fit"] == 0
    assert len(set(result.indices.tolist())) == 50


def test_empty_texts_are_never_selected_and_counted(caplog):
    texts = [f"document number {i} about topic {i % 3}" for i in range(60)]
    for i in (5, 17, 33):
        texts[i] = ""
    texts[40] = None
    texts[41] = "   "
    pool = datasets.Dataset.from_dict({"text": texts, "label": [i % 3 for i in range(60)]})
    with caplog.at_level(logging.WARNING, logger="svp_hf"):
        result = select(pool, proxy="tfidf", strategy="entropy", budget=55)
    assert "5 of 60 rows have no text" in caplog.text
    assert not {5, 17, 33, 40, 41} & set(result.indices.tolist())
    assert result.num_empty_text == 5
    with pytest.raises(PoolExhaustedError, match="56 rows requested, 55 selectable"):
        select(pool, proxy="tfidf", strategy="entropy", budget=56)


def test_bad_inputs_fail_before_any_work(ag_small):
    dd = datasets.DatasetDict({"train": ag_small, "test": ag_small})
    with pytest.raises(DatasetTypeError, match=r"splits \['train', 'test'\]; did you mean pool\['train'\]"):
        select(dd, strategy="entropy", budget=0.1)
    with pytest.raises(EmptyPoolError):
        select(ag_small.select([]), strategy="entropy", budget=0.1)
    for budget in (0, 2.0, -1, 5000):
        with pytest.raises(BudgetError):
            select(ag_small, strategy="entropy", budget=budget)
    with pytest.raises(svp_hf.RegistryError, match="unknown proxy 'fastext'.*Did you mean 'fasttext'"):
        SelectionConfig(proxy="fastext")
    with pytest.raises(svp_hf.ConfigError, match="outside the pool"):
        select(ag_small, strategy="entropy", budget=10, labeled_indices=[0, 5000])
    with pytest.raises(svp_hf.ConfigError, match="repeat rows"):
        select(ag_small, strategy="entropy", budget=10, labeled_indices=[1, 1])
    with pytest.raises(EmptyPoolError, match="strategy='random'"):
        select(ag_small, strategy="entropy", budget=10, labeled_indices=[])


def test_overrides_and_instances(ag_small):
    proxy = svp_hf.build_proxy("tfidf", seed=0)
    result = select(ag_small, SelectionConfig(proxy=proxy, strategy="margin", budget=0.05), budget=30)
    assert len(result) == 30 and result.proxy is proxy and proxy.is_fitted
    with pytest.raises(svp_hf.ConfigError, match="unknown selection setting"):
        select(ag_small, SelectionConfig(), bugdet=3)


def test_save_to_disk_is_complete_and_atomic(ag_small, tmp_path, monkeypatch):
    result = select(ag_small, proxy="tfidf", strategy="entropy", budget=0.1)
    out = result.save_to_disk(tmp_path / "sel")
    loaded = datasets.load_from_disk(str(out))
    assert loaded["svp_pool_index"] == result.indices.tolist()
    config = json.loads((out / "selection_config.json").read_text())
    assert config["num_selected"] == 120 and config["config"]["strategy"] == "entropy"
    assert config["proxy_hyperparameters"]["C"] == 1.0 and "datasets" in config["versions"]
    np.testing.assert_array_equal(np.load(out / "svp_pool_scores.npy"), result.scores)
    card = (out / "README.md").read_text()
    assert "entropy" in card and "None" not in card
    with pytest.raises(OutputExistsError):
        result.save_to_disk(out)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        result.save_to_disk(tmp_path / "nested" / "sel2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel"]  # nothing half-written, no stray parent
    with pytest.raises(OSError):
        result.save_to_disk(out, overwrite=True)
    assert datasets.load_from_disk(str(out)).num_rows == 120  # the old output survives a failed overwrite


def test_dataset_card_front_matter_parses(ag_small, tmp_path):
    import yaml

    result = select(ag_small, proxy="tfidf", strategy="margin", budget=0.1)
    card = (result.save_to_disk(tmp_path / "s") / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert {"svp-hf", "strategy:margin", "proxy:tfidf"} <= set(front["tags"])  # the Hub's key:value tag style
    assert front["task_categories"] == ["text-classification"]
    pool_counts = np.bincount(ag_small["label"], minlength=4)
    picked_counts = np.bincount(np.array(ag_small["label"])[result.indices], minlength=4)
    assert f"| World | {pool_counts[0]} | {picked_counts[0]} |" in card
    assert f"| Sci/Tech | {pool_counts[3]} | {picked_counts[3]} |" in card
    assert "Selection via Proxy" in card and "coleman2020selection" in card
