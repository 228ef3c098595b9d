"""The TF-IDF proxy: scikit-learn's TF-IDF features and a logistic-regression classifier, the cheapest proxy."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..data import check_max_words
from ..errors import ProxyError
from .base import Proxy, register_proxy

VOCAB_FILE = "vocabulary.json"
ARRAYS_FILE = "arrays.npz"


def _one_blas_thread():
    """Dense BLAS on one thread: lbfgs and the randomized SVD otherwise give results that depend on the thread count
    (scores moved by up to 1.4e-3 on AG News between OMP_NUM_THREADS=1, which torchrun sets, and 2), so a selection
    would change with the machine or the launcher."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


@register_proxy("tfidf")
class TfidfProxy(Proxy):
    """TF-IDF (word unigrams and bigrams, sublinear tf) + multinomial logistic regression.

    Hyperparameters (``--proxy-kwargs``):

    - ``ngram_max`` 2, ``min_df`` 1, ``max_features`` 200,000, ``sublinear_tf`` true: the vectoriser.
    - ``C`` 10.0: inverse L2 strength of the logistic regression (TF-IDF rows are unit-length, so the
      usual C=1 underfits small sets).
    - ``epochs`` 200: the solver's iteration limit (lbfgs passes over the data).
    - ``embed_dim`` 64: ``embed`` returns a TruncatedSVD (latent semantic analysis) projection of the TF-IDF
      vectors onto this many components, fitted on the training rows at the first ``embed`` call and
      deterministic under the seed. Rows are L2-normalised TF-IDF, so distances are cosine-like.

    - ``observe_epochs`` 10: for forgetting events only. lbfgs takes full-batch steps, which is not the training
      forgetting events are defined on, so the observed trajectory is a logistic-regression model on the same
      features trained by SGD (log loss, L2 1/(C·n), rows reshuffled every epoch) for this many epochs; the proxy's
      probabilities still come from the lbfgs model.
    - ``max_words`` None: read only the first N words of each text (as the ``fasttext`` proxy's ``max_words``).

    Probabilities come from ``predict_proba``; classes missing from the training rows get probability 0.
    """

    defaults = {
        "ngram_max": 2,
        "min_df": 1,
        "max_features": 200_000,
        "sublinear_tf": True,
        "C": 10.0,
        "epochs": 200,
        "embed_dim": 64,
        "observe_epochs": 10,
        "max_words": None,
    }
    observable = True

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        check_max_words(self.hyperparameters["max_words"], "tfidf")
        self.vectorizer = None
        self.coef: np.ndarray | None = None  # [K, F] for K trained classes (K=1 row for binary problems)
        self.intercept: np.ndarray | None = None
        self.classes: np.ndarray | None = None  # label ids the classifier was trained on
        self.components: np.ndarray | None = None  # [embed_dim, F]
        self._train_matrix = None

    def _make_vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        h = self.hyperparameters
        return TfidfVectorizer(
            ngram_range=(1, int(h["ngram_max"])),
            min_df=h["min_df"],
            max_features=h["max_features"],
            sublinear_tf=bool(h["sublinear_tf"]),
            dtype=np.float32,
            vocabulary=vocabulary,
        )

    def _texts(self, dataset) -> list[str]:
        batches = self.task.iter_texts(dataset, max_words=self.hyperparameters["max_words"])
        return [t for batch in batches for t in batch.to_pylist()]

    def _fit(self, dataset, labels: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = self._make_vectorizer()
        try:
            x = self.vectorizer.fit_transform(self._texts(dataset))
        except ValueError as err:  # e.g. "empty vocabulary" when every text is empty
            raise ProxyError(f"tfidf proxy could not build features: {err}") from err
        self._train_matrix = x
        self.components = None
        classes = np.unique(labels)
        if len(classes) == 1:  # a tiny labeled set may hold one class: predict it with certainty
            self.classes, self.coef, self.intercept = classes, np.zeros((1, x.shape[1]), np.float32), np.zeros(1)
            return
        clf = LogisticRegression(C=float(self.hyperparameters["C"]), max_iter=int(self.hyperparameters["epochs"]))
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.filterwarnings("ignore", message=".*lbfgs failed to converge.*")
            clf.fit(x, labels)
        self.classes, self.coef, self.intercept = clf.classes_, clf.coef_.astype(np.float32), clf.intercept_

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        from sklearn.linear_model import SGDClassifier

        self._fit(dataset, labels)
        x, x_observe = self._train_matrix, self._transform(observe, 8192)
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

    def _transform(self, dataset, batch_size: int):
        import scipy.sparse as sp

        batches = self.task.iter_texts(dataset, batch_size, max_words=self.hyperparameters["max_words"])
        parts = [self.vectorizer.transform(b.to_pylist()) for b in batches]
        return sp.vstack(parts).tocsr() if parts else sp.csr_matrix((0, len(self.vectorizer.vocabulary_)))

    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        from scipy.special import expit, softmax

        out = np.zeros((dataset.num_rows, self.task.num_labels), dtype=np.float32)
        x = self._transform(dataset, batch_size)
        logits = np.asarray(x @ self.coef.T, dtype=np.float64) + self.intercept
        if len(self.classes) == 1:
            out[:, self.classes[0]] = 1.0
        elif len(self.classes) == 2:
            p1 = expit(logits[:, 0])
            out[:, self.classes[0]], out[:, self.classes[1]] = 1.0 - p1, p1
        else:
            out[:, self.classes] = softmax(logits, axis=1)
        return out

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        if self.components is None:
            self.components = self._fit_svd()
        return np.asarray(self._transform(dataset, batch_size) @ self.components.T, dtype=np.float32)

    def _fit_svd(self) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD

        if self._train_matrix is None:
            raise ProxyError("this tfidf proxy was loaded without its SVD; save it after calling embed() once")
        x = self._train_matrix
        k = int(self.hyperparameters["embed_dim"])
        k = max(1, min(k, x.shape[1] - 1, x.shape[0] - 1)) if min(x.shape) > 1 else 1
        svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized")
        with _one_blas_thread():
            svd.fit(x)
        return svd.components_.astype(np.float32)

    # -- persistence: JSON + npz, no pickle -----------------------------------------------------------------
    def _save(self, path: Path) -> None:
        if self.components is None and self._train_matrix is not None:
            self.components = self._fit_svd()
        vocab = {term: int(i) for term, i in self.vectorizer.vocabulary_.items()}
        (path / VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False))
        np.savez(
            path / ARRAYS_FILE,
            idf=self.vectorizer.idf_,
            coef=self.coef,
            intercept=self.intercept,
            classes=self.classes,
            components=self.components,
        )

    def _load(self, path: Path) -> None:
        vocab = json.loads((path / VOCAB_FILE).read_text())
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as arrays:
            self.vectorizer = self._make_vectorizer(vocabulary=vocab)
            self.vectorizer.fit([""])  # sets up the fixed vocabulary; idf is replaced below
            self.vectorizer.idf_ = arrays["idf"]
            self.coef, self.intercept = arrays["coef"], arrays["intercept"]
            self.classes, self.components = arrays["classes"], arrays["components"]
