"""Features computed once per pool, a linear head fitted per round: the ``tfidf`` and ``embedding`` proxies.

The features (`svp_hf.proxies.features`) are label-free and cached by the pool's content, so in active learning only
the head is refitted each round (milliseconds to a second), and a second run on the same pool skips the feature
computation entirely.

Heads:

- ``"svm"``: a linear SVM (liblinear, one-vs-rest, squared hinge), the fastest accurate head on sparse TF-IDF.
  Its decision values become probabilities by temperature scaling, ``softmax(T · decision)``, with ``T`` fitted on
  the self-check's out-of-fold decisions (``T`` = 1 when there is no check).
- ``"logreg"``: multinomial logistic regression (lbfgs), probabilities by construction.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data import check_max_words
from ..errors import ConfigError, ProxyError
from .base import Proxy, register_proxy
from .features import (
    CombinedFeatures,
    EncoderFeatures,
    PoolFeatures,
    TextFeatures,
    TfidfFeatures,
    pool_features,
    texts_digest,
    transform_many,
)

logger = logging.getLogger(__name__)

HEAD_FILE = "head.npz"
FEATURES_FILE = "features.json"
FEATURES_ARRAYS = "features.npz"
HEADS = ("svm", "logreg")
# the feature settings the tfidf / embedding proxies share with hybrid
TFIDF_SETTINGS = {"ngram_max": 1, "min_df": 2, "max_features": 200_000, "sublinear_tf": True}
ENCODER_SETTINGS = {"model": "all-MiniLM-L6-v2", "max_length": 256, "encode_batch_size": 64}


def _one_blas_thread():
    """Dense BLAS on one thread: lbfgs and the randomized SVD otherwise give results that depend on the thread count
    (scores moved by up to 1.4e-3 on AG News between OMP_NUM_THREADS=1, which torchrun sets, and 2), so a selection
    would change with the machine or the launcher."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def fit_linear_head(x, y: np.ndarray, head: str, C: float, seed: int, max_iter: int = 1000):
    """``(classes, coef [K, F], intercept [K])`` of a linear head; K = 1 for two classes (logit of the second)."""
    classes = np.unique(y)
    if len(classes) == 1:  # a tiny labeled set may hold one class: predict it with certainty
        return classes, np.zeros((1, x.shape[1]), np.float32), np.zeros(1, np.float64)
    with warnings.catch_warnings(), _one_blas_thread():
        warnings.filterwarnings("ignore", message=".*(failed to converge|Liblinear failed).*")
        if head == "svm":
            from sklearn.svm import LinearSVC

            clf = LinearSVC(C=C, random_state=seed, max_iter=max_iter)
        else:
            from sklearn.linear_model import LogisticRegression

            clf = LogisticRegression(C=C, max_iter=max_iter)
        clf.fit(x, y)
    return clf.classes_, np.asarray(clf.coef_, dtype=np.float32), np.asarray(clf.intercept_, dtype=np.float64)


def head_logits(x, classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Logits over the trained classes, ``[N, len(classes)]`` (two classes: ``[0, z]``, so softmax = sigmoid)."""
    z = np.asarray(x @ coef.T, dtype=np.float64) + intercept
    if len(classes) == 2:
        return np.concatenate([np.zeros_like(z), z], axis=1)
    if len(classes) == 1:
        return np.zeros((z.shape[0], 1))
    return z


def fit_temperature(logits: np.ndarray, y_pos: np.ndarray) -> float:
    """The temperature ``T`` minimising the log-loss of ``softmax(T · logits)`` (``y_pos``: column of the true class;
    -1 where the class was not in the head). Temperature scaling (Guo et al., 2017): one number, so it never
    changes which class is predicted, only how sure the probabilities are."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    keep = y_pos >= 0
    if keep.sum() < 2 or logits.shape[1] < 2:
        return 1.0
    z, t = logits[keep], y_pos[keep]

    def loss(log_t: float) -> float:
        return float(-log_softmax(np.exp(log_t) * z, axis=1)[np.arange(len(t)), t].mean())

    res = minimize_scalar(loss, bounds=(np.log(0.05), np.log(200.0)), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(res.x))


def _tfidf_features(h: dict[str, Any]) -> TfidfFeatures:
    return TfidfFeatures(h["ngram_max"], h["min_df"], h["max_features"], h["sublinear_tf"])


def _encoder_features(h: dict[str, Any]) -> EncoderFeatures:
    return EncoderFeatures(h["model"], h["max_length"], h["encode_batch_size"])


class LinearHeadProxy(Proxy):
    """Base of proxies made of cached label-free features and a linear head fitted per round.

    Subclasses set ``defaults`` (with ``head``, ``C``, ``cache``, ``max_words``) and implement `_extractor`.
    """

    observable = True
    cv_folds: ClassVar[int] = 3

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        h = self.hyperparameters
        check_max_words(h.get("max_words"), self.name)
        if h["head"] not in HEADS:
            raise ConfigError(f"{self.name} proxy: head must be one of {HEADS}, got {h['head']!r}")
        if not isinstance(h["C"], (int, float)) or isinstance(h["C"], bool) or not h["C"] > 0:
            raise ConfigError(f"{self.name} proxy: C must be a positive number, got {h['C']!r}")
        self.extractor: TextFeatures | None = None
        self.pool: PoolFeatures | None = None
        self.classes: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None
        self.temperature = 1.0
        # the last fit's pool features: where they came from ("computed", "disk" cache, "memory") and the seconds spent
        # getting them; computing or reading them is a once-per-run cost, reported apart from the rounds' head fits
        self.features_origin: str | None = None
        self.feature_seconds = 0.0
        self.pool_digest: str | None = None  # the texts the features were learnt on (kept through save / load)

    # -- features -----------------------------------------------------------------------------------------------
    feature_keys: ClassVar[tuple[str, ...]] = ()  # hyperparameters that change the features (not only the head)

    def _extractor(self, h: dict[str, Any] | None = None) -> TextFeatures:
        raise NotImplementedError

    def _settings_changed(self, params: dict[str, Any]) -> None:
        if any(k in self.feature_keys for k in params) and self.pool is not None:
            texts = self.pool.texts
            self.pool, _ = pool_features(self._extractor(), texts, disk_cache=bool(self.hyperparameters["cache"]))
            self.extractor = self.pool.extractor

    def _text_list(self, dataset) -> list[str]:
        batches = self.task.iter_texts(dataset, max_words=self.hyperparameters.get("max_words"))
        return [t for batch in batches for t in batch.to_pylist()]

    def _prepare(self, unlabeled) -> None:
        import time

        t0 = time.perf_counter()
        self.extractor = self._extractor()
        self.pool, _ = pool_features(
            self.extractor, self._text_list(unlabeled), disk_cache=bool(self.hyperparameters["cache"])
        )
        self.extractor = self.pool.extractor
        self.pool_digest = self.pool.digest
        self.features_origin = self.pool.origin
        self.feature_seconds = time.perf_counter() - t0

    def _start_fit(self, dataset, unlabeled) -> None:
        # without a pool, the training rows are the texts the features are learnt from
        self._prepare(unlabeled if unlabeled is not None else dataset)

    def features(self, dataset):
        """The features of ``dataset``'s rows (cached rows of the pool where possible)."""
        if self.extractor is None:
            raise ProxyError(f"the {self.name} proxy has no features; fit it or load a saved one first")
        texts, disk = self._text_list(dataset), bool(self.hyperparameters["cache"])
        if self.pool is None:  # a loaded proxy scoring without its pool
            return transform_many(self.extractor, texts, disk_cache=disk)
        return self.pool.features_of(texts, disk_cache=disk)

    # -- Proxy implementation -----------------------------------------------------------------------------------
    def _fit(self, dataset, labels: np.ndarray) -> None:
        self._fit_head(self.features(dataset), labels)

    def _fit_head(self, x, labels: np.ndarray) -> None:
        h = self.hyperparameters
        self.classes, self.coef, self.intercept = fit_linear_head(
            x, labels, h["head"], float(h["C"]), self.seed, max_iter=int(h["epochs"])
        )
        self.temperature = 1.0

    def _cv_scores(self, dataset, labels, folds, params):
        h = {**self.hyperparameters, **params}
        if any(h[k] != self.hyperparameters[k] for k in self.feature_keys) and self.pool is not None:
            pool, _ = pool_features(self._extractor(h), self.pool.texts, disk_cache=bool(h["cache"]))
            x = pool.features_of(self._text_list(dataset))
        else:
            x = self.features(dataset)
        logits = np.zeros((len(labels), self.task.num_labels))
        logits[:] = -np.inf
        for train_idx, test_idx in folds:
            classes, coef, intercept = fit_linear_head(
                x[train_idx], labels[train_idx], h["head"], float(h["C"]), self.seed, max_iter=int(h["epochs"])
            )
            logits[np.ix_(test_idx, classes)] = head_logits(x[test_idx], classes, coef, intercept)
        return logits

    def _after_check(self, oof_scores: np.ndarray, labels: np.ndarray) -> None:
        """Fit the SVM head's temperature on the out-of-fold logits (-inf for classes a fold did not train on)."""
        if self.hyperparameters["head"] != "svm" or self.classes is None or len(self.classes) < 2:
            return
        position = np.full(self.task.num_labels, -1)
        position[self.classes] = np.arange(len(self.classes))
        z = oof_scores[:, self.classes]
        pos = np.where(labels >= 0, position[np.maximum(labels, 0)], -1)
        known = pos >= 0
        pos[known & ~np.isfinite(z[np.arange(len(z)), np.maximum(pos, 0)])] = -1
        keep = pos >= 0
        self.temperature = fit_temperature(z[keep], pos[keep])

    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        from scipy.special import softmax

        out = np.zeros((dataset.num_rows, self.task.num_labels), dtype=np.float32)
        for start in range(0, dataset.num_rows, batch_size):
            part = dataset.select(range(start, min(start + batch_size, dataset.num_rows)))
            logits = head_logits(self.features(part), self.classes, self.coef, self.intercept)
            out[start : start + part.num_rows][:, self.classes] = softmax(self.temperature * logits, axis=1)
        return out

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        """Forgetting events need a training that can be watched epoch by epoch, which liblinear and lbfgs are not: the
        observed trajectory is a logistic regression on the same features trained by SGD (log loss, L2 1/(C·n), rows
        reshuffled every epoch) for ``observe_epochs`` epochs; the proxy's probabilities come from its own head."""
        from sklearn.linear_model import SGDClassifier

        self._fit(dataset, labels)
        x, x_observe = self.features(dataset), self.features(observe)
        epochs = int(self.hyperparameters["observe_epochs"])
        classes = np.unique(labels)
        out = np.empty((epochs, observe.num_rows), dtype=np.int16)
        if len(classes) == 1:
            out[:] = classes[0]
            return out
        alpha = 1.0 / (float(self.hyperparameters["C"]) * x.shape[0])
        clf = SGDClassifier(loss="log_loss", alpha=alpha, random_state=self.seed)
        rng = np.random.default_rng(self.seed)
        for e in range(epochs):
            order = rng.permutation(x.shape[0])
            clf.partial_fit(x[order], labels[order], classes=classes)
            out[e] = clf.predict(x_observe)
        return out

    # -- persistence: JSON + npz, no pickle ---------------------------------------------------------------------
    def label_free_embeddings(self, pool, task) -> np.ndarray:
        self.task = task
        self._prepare(pool)
        return self._pool_embeddings()

    def _pool_embeddings(self) -> np.ndarray:
        return np.asarray(self.pool.matrix, dtype=np.float32)

    def prepare_shared(self, pool, task, dist) -> None:
        """Each process encodes a contiguous share of the batches of the pool (the same batches one process would
        encode, so the features are the same bits), and every process gets them all; the main one caches them."""
        extractor = self._extractor()
        if extractor.learns_from_pool or not hasattr(extractor, "plan"):
            return  # fitted on the whole pool (TF-IDF): the main process computes it in `fit`
        from ..distributed import shard_bounds
        from .features import cached_pool_features, remember_pool_features

        self.task = task
        texts = self._text_list(pool)
        disk = bool(self.hyperparameters["cache"])
        found = cached_pool_features(extractor, texts, disk_cache=disk) is not None
        if dist.all_gather_array(np.array([found])).all():
            return
        batches = extractor.plan(texts)
        start, stop = shard_bounds(len(batches), dist.world_size, dist.rank)
        mine = batches[start:stop]
        local = extractor.encode(texts, mine) if mine else np.zeros((0, extractor.dim()), np.float32)
        logger.info("encoded %d of the pool's %d texts on process %d", len(local), len(texts), dist.rank)
        matrix = np.zeros((len(texts), extractor.dim()), dtype=np.float32)
        if batches:
            matrix[np.concatenate(batches)] = dist.gather_variable(local)
        remember_pool_features(extractor, texts, matrix, disk_cache=disk, write=dist.is_main)

    def attach_pool(self, pool) -> None:
        if self.pool is not None or self.pool_digest is None:
            return
        texts = self._text_list(pool)
        if texts_digest(texts) == self.pool_digest:  # the pool the features were learnt on: reuse its cache
            self.pool, _ = pool_features(self._extractor(), texts, disk_cache=bool(self.hyperparameters["cache"]))
            self.extractor = self.pool.extractor

    def _save(self, path: Path) -> None:
        meta, arrays = self.extractor.state()
        document = {"pool_digest": self.pool.digest if self.pool is not None else self.pool_digest, "state": meta}
        (path / FEATURES_FILE).write_text(json.dumps(document, ensure_ascii=False))
        np.savez(path / FEATURES_ARRAYS, **arrays)
        np.savez(
            path / HEAD_FILE,
            classes=self.classes,
            coef=self.coef,
            intercept=self.intercept,
            temperature=np.float64(self.temperature),
            **self._extra_arrays(),
        )

    def _load(self, path: Path) -> None:
        self.extractor = self._extractor()
        document = json.loads((path / FEATURES_FILE).read_text())
        self.pool_digest = document["pool_digest"]
        with np.load(path / FEATURES_ARRAYS, allow_pickle=False) as arrays:
            self.extractor.set_state(document["state"], dict(arrays))
        with np.load(path / HEAD_FILE, allow_pickle=False) as arrays:
            self.classes, self.coef, self.intercept = arrays["classes"], arrays["coef"], arrays["intercept"]
            self.temperature = float(arrays["temperature"])
            self._load_extra(dict(arrays))

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        return None


@register_proxy("tfidf")
class TfidfProxy(LinearHeadProxy):
    """TF-IDF features of the whole pool (vocabulary and idf learnt from its texts, no labels) + a linear SVM.

    The features are computed once per pool and cached (in memory and in ``$SVP_HF_CACHE``); each fit trains only
    the head. Hyperparameters (``--proxy-kwargs``):

    - ``ngram_max`` 1, ``min_df`` 2, ``max_features`` 200,000, ``sublinear_tf`` true: the vectoriser.
    - ``head`` ``"svm"`` (linear SVM, temperature-scaled) or ``"logreg"``; ``C`` 1.0 (its inverse L2 strength);
      ``epochs`` 1000: the solver's iteration limit.
    - ``embed_dim`` 64: ``embed`` returns a TruncatedSVD (latent semantic analysis) projection of the TF-IDF vectors,
      fitted on the pool's features (label-free), deterministic under the seed.
    - ``observe_epochs`` 10: for forgetting events (see `LinearHeadProxy._fit_observed`).
    - ``max_words`` None: read only the first N words of each text.
    - ``cache`` true: keep the pool's features on disk for later runs.

    Measured on Banking77 (one query per budget, margin): at 10-50% of the pool the same accuracy as small-text's
    TF-IDF + LinearSVC, in the same time (BENCHMARKS.md, "Against small-text").
    """

    defaults = {
        **TFIDF_SETTINGS,
        "head": "svm",
        "C": 1.0,
        "epochs": 1000,
        "embed_dim": 64,
        "observe_epochs": 10,
        "max_words": None,
        "cache": True,
    }
    search_space: ClassVar[list[dict[str, Any]]] = [
        {},
        {"C": 0.3},
        {"C": 3.0},
        {"ngram_max": 2},
        {"ngram_max": 2, "C": 3.0},
        {"head": "logreg", "C": 10.0},
    ]

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        self.components: np.ndarray | None = None

    feature_keys = ("ngram_max", "min_df", "max_features", "sublinear_tf")

    def _extractor(self, h: dict[str, Any] | None = None) -> TextFeatures:
        return _tfidf_features(self.hyperparameters if h is None else h)

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        if self.components is None:
            self.components = self._fit_svd()
        return np.asarray(self.features(dataset) @ self.components.T, dtype=np.float32)

    def _fit_svd(self) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD

        if self.pool is None:
            raise ProxyError("this tfidf proxy was loaded without its SVD; save it after calling embed() once")
        k = int(self.hyperparameters["embed_dim"])
        extras = self.pool.extras
        cached = extras.get(("svd", k, self.seed))
        if cached is not None:
            return cached
        x = self.pool.matrix
        k = max(1, min(k, x.shape[1] - 1, x.shape[0] - 1)) if min(x.shape) > 1 else 1
        svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized")
        with _one_blas_thread():
            svd.fit(x)
        components = svd.components_.astype(np.float32)
        extras[("svd", int(self.hyperparameters["embed_dim"]), self.seed)] = components
        return components

    def _pool_embeddings(self) -> np.ndarray:
        self.components = self._fit_svd()
        return np.asarray(self.pool.matrix @ self.components.T, dtype=np.float32)

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        if self.components is None and self.pool is not None:
            self.components = self._fit_svd()
        return {} if self.components is None else {"components": self.components}

    def _load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        self.components = arrays.get("components")


@register_proxy("embedding")
class EmbeddingProxy(LinearHeadProxy):
    """A frozen pretrained text encoder embeds the pool once (cached on disk by pool content, model weights and
    ``max_length``); a linear head is fitted on the embeddings per round.

    Hyperparameters (``--proxy-kwargs``):

    - ``model`` ``"all-MiniLM-L6-v2"``: the real weights shipped by ``svp-hf[minilm]`` (offline), or any local folder
      or Hub id of a transformers / sentence-transformers encoder (never with remote code).
    - ``max_length`` 256 tokens, ``encode_batch_size`` 64.
    - ``head`` ``"logreg"`` or ``"svm"``; ``C`` 10.0 (embeddings are unit-length, so a weak penalty fits); ``epochs``
      1000: the solver's iteration limit.
    - ``observe_epochs`` 10, ``max_words`` None, ``cache`` true: as for ``tfidf``.

    ``embed`` returns the encoder's embeddings, so ``kcenters`` and the batch-aware strategies work on them. The
    one-time encoding cost is reported apart from the per-round head fit (``feature_seconds``).
    """

    defaults = {
        **ENCODER_SETTINGS,
        "head": "logreg",
        "C": 10.0,
        "epochs": 1000,
        "observe_epochs": 10,
        "max_words": None,
        "cache": True,
    }
    search_space: ClassVar[list[dict[str, Any]]] = [{}, {"C": 3.0}, {"C": 30.0}, {"head": "svm", "C": 1.0}]

    feature_keys = ("model", "max_length")

    def _extractor(self, h: dict[str, Any] | None = None) -> TextFeatures:
        return _encoder_features(self.hyperparameters if h is None else h)

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        return np.asarray(self.features(dataset), dtype=np.float32)


@register_proxy("hybrid")
class HybridProxy(LinearHeadProxy):
    """TF-IDF and a frozen pretrained encoder side by side, ``[tfidf | embedding]``, with a linear SVM: the words a
    bag-of-words model weighs and the meaning a pretrained encoder captures, in one cheap head per round. Both
    feature sets are cached like the ``tfidf`` and ``embedding`` proxies' (one encoding serves all three).

    Hyperparameters (``--proxy-kwargs``): the ``tfidf`` proxy's vectoriser settings (``ngram_max`` 1, ``min_df`` 2,
    ``max_features``, ``sublinear_tf``), the ``embedding`` proxy's encoder settings (``model``, ``max_length`` 256,
    ``encode_batch_size``), ``embedding_weight`` "auto" (the encoder part's scale beside the unit-length TF-IDF rows:
    "auto" compares 1, 0.5 and 2 by the self-check's cross-validation on every fit; a number fixes it),
    ``head`` ``"svm"``, ``C`` 1.0, ``epochs``, ``observe_epochs``, ``max_words``, ``cache``.

    ``embed`` returns the encoder's embeddings (for ``kcenters`` and the batch-aware strategies).
    """

    defaults = {
        **ENCODER_SETTINGS,
        "embedding_weight": "auto",
        **TFIDF_SETTINGS,
        "head": "svm",
        "C": 1.0,
        "epochs": 1000,
        "observe_epochs": 10,
        "max_words": None,
        "cache": True,
    }
    feature_keys = ("model", "max_length", "embedding_weight", "ngram_max", "min_df", "max_features", "sublinear_tf")
    search_space: ClassVar[list[dict[str, Any]]] = [{}, {"C": 0.3}, {"C": 3.0}]
    # embedding_weight "auto": the weights compared on every fit, the first of equals winning. Measured (BENCHMARKS):
    # the best weight is a property of the pool (Banking77 2-4, AG News / SST-2 / IMDB 0.5-1), and the self-check's
    # cross-validation ranks the weights as the evaluation split does.
    weight_choices: ClassVar[tuple[float, ...]] = (1.0, 0.5, 2.0)

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        weight = self.hyperparameters["embedding_weight"]
        if weight == "auto":
            self.explicit = self.explicit - {"embedding_weight"}  # asked for by name: still chosen
        elif isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ConfigError(f"hybrid proxy: embedding_weight must be 'auto' or a number >= 0, got {weight!r}")

    def _tuning_space(self) -> list[dict[str, Any]]:
        space = super()._tuning_space() or [{}]
        if self.hyperparameters["embedding_weight"] != "auto":
            return space if len(space) > 1 else []
        return [{**params, "embedding_weight": w} for params in space for w in self.weight_choices]

    def _tune(self, dataset, labels: np.ndarray):
        checked = super()._tune(dataset, labels)
        if self.hyperparameters["embedding_weight"] == "auto":  # too few labeled rows to compare: the first
            self.hyperparameters["embedding_weight"] = self.weight_choices[0]
        return checked

    def _extractor(self, h: dict[str, Any] | None = None) -> TextFeatures:
        h = self.hyperparameters if h is None else h
        weight = h["embedding_weight"]
        weight = self.weight_choices[0] if weight == "auto" else float(weight)
        return CombinedFeatures(_tfidf_features(h), _encoder_features(h), weight, disk_cache=bool(h["cache"]))

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        return self.extractor.embeddings(self.features(dataset))

    def _pool_embeddings(self) -> np.ndarray:
        return self.extractor.embeddings(self.pool.matrix)
