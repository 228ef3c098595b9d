"""The proxy interface: a cheap model that is trained on labeled rows and turns a pool into arrays."""

from __future__ import annotations

import json
import logging
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data import ClassificationTask, ImageClassificationTask, TextClassificationTask, ensure_dataset
from ..errors import ConfigError, NotFittedError, ProxyError
from ..registry import Registry

logger = logging.getLogger(__name__)

PROXY_CONFIG_NAME = "proxy_config.json"
CHECK_MIN_ROWS = 12  # fewer labeled rows than this: no self-check (each fold would hold a handful of rows)
CHECK_MAX_ROWS = 10_000  # a self-check (and tuning) looks at most at this many labeled rows, drawn under the seed
TUNE_MAX_TRIALS = 9  # `tune`: at most this many settings are tried, in the order of `search_space`


@dataclass
class ProxyOutputs:
    """What a proxy computed for every pool row; a strategy reads the fields it needs.

    Attributes:
        num_rows (`int`): how many pool rows the outputs describe.
        probs (`np.ndarray` of shape `[N, C]`, float32): class probabilities, columns in label-id order.
        embeddings (`np.ndarray` of shape `[N, D]`, float32): the proxy's representation of each row.
        forgetting (`np.ndarray` of shape `[N]`, float32): forgetting events per row while the proxy trained
            (see `svp_hf.strategies.forgetting_counts`).
        embeddings_shard (`tuple[int, int]`, *optional*): under several processes, ``embeddings`` holds only the
            pool rows ``[start, stop)`` of this process (for strategies with ``sharded_embeddings``).
        labels (`np.ndarray` of shape `[N]`, int64, *optional*): the known label id of every labeled row the proxy
            trained on, -1 for the others (for strategies that balance classes).
    """

    num_rows: int
    probs: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    forgetting: np.ndarray | None = None
    embeddings_shard: tuple[int, int] | None = None
    labels: np.ndarray | None = None

    def __post_init__(self):
        for name in ("probs", "embeddings", "forgetting", "labels"):
            value = getattr(self, name)
            expected = self.num_rows
            if name == "embeddings" and self.embeddings_shard is not None:
                expected = self.embeddings_shard[1] - self.embeddings_shard[0]
            if value is not None and value.shape[0] != expected:
                raise ValueError(f"{name} has {value.shape[0]} rows, expected {expected}")


class Proxy(ABC):
    """Base class of proxies.

    Subclasses set ``defaults`` (every hyperparameter with its default; ``--proxy-kwargs`` may only set these)
    and implement `_fit`, `_predict_proba`, `_embed`, `_save` and `_load`. The base class validates inputs,
    keeps the task (columns and label mapping) and handles the saved folder's layout.
    """

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    observable: ClassVar[bool] = False  # can report predictions epoch by epoch while training
    modality: ClassVar[str] = "text"  # the kind of input it reads: "text" or "image"
    # The self-check: k-fold cross-validation on the labeled rows for cheap proxies (cv_folds >= 2); proxies whose
    # fit is expensive set self_check_default False (a held-out slice, cv_folds = 1, when switched on).
    cv_folds: ClassVar[int] = 3
    self_check_default: ClassVar[bool] = True
    # `tune`: the settings tried, in order, each a change from the defaults ({} = the defaults); settings that touch a
    # key the user set explicitly are dropped, so explicit --proxy-kwargs always win.
    search_space: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        common = {"self_check": self.self_check_default, "tune": False}
        valid = {**self.defaults, **common}
        unknown = sorted(set(hyperparameters) - set(valid))
        if unknown:
            raise ConfigError(f"unknown {self.name} proxy argument(s) {unknown}; valid: {', '.join(sorted(valid))}")
        for flag in common:
            if not isinstance(hyperparameters.get(flag, False), bool):
                raise ConfigError(f"{self.name} proxy: {flag} must be true or false, got {hyperparameters[flag]!r}")
        if hyperparameters.get("tune") and not self.search_space:
            raise ConfigError(
                f"the {self.name} proxy has nothing to tune; drop tune or use tfidf, fasttext, embedding"
            )
        self.seed = int(seed)
        self.explicit = frozenset(hyperparameters)  # what the user set: tuning never overrides these
        self.hyperparameters: dict[str, Any] = {**valid, **hyperparameters}
        self.task: ClassificationTask | None = None
        self.epoch_predictions: np.ndarray | None = None
        self.self_check: dict[str, Any] | None = None  # the last fit's self-check (see `check`)
        self.tuning: dict[str, Any] | None = None  # the last fit's tuning trials, when `tune` is on
        self._unlabeled = None
        self._given_check: tuple | None = None  # a `_check` result of the next fit's rows, computed elsewhere

    # -- public API -----------------------------------------------------------------------------------------
    def fit(self, dataset, task: ClassificationTask | None = None, observe=None, unlabeled=None) -> Proxy:
        """Train on every row of ``dataset`` (which must all be labeled). Returns ``self``.

        ``task`` fixes the columns and the label mapping (pass the pool's, so that classes absent from a
        small labeled set still get a probability column); by default it is inferred from ``dataset`` with
        the columns ``text`` (``image`` for image proxies) and ``label``.

        ``observe``: a dataset whose predicted classes are recorded after every training epoch, in
        ``self.epoch_predictions`` (int16 ``[epochs, len(observe)]``); what forgetting events are counted from.
        Only proxies with ``observable = True`` support it.

        ``unlabeled``: the whole pool, whose texts (never labels) a proxy may learn from before training, e.g. the
        ``transformer`` proxy's WordPiece vocabulary. `select` and active learning pass the pool.

        Self-check: unless ``self_check`` is false, the proxy's accuracy on the rows it is given is estimated first
        (k-fold cross-validation, or a held-out fifth for the torch proxies, which only check when asked), and kept
        in ``self.self_check`` (accuracy, the majority-class rate, whether it is near chance, rows, seconds); a
        warning names what to try when it is near chance. With ``tune``, the settings of ``search_space`` are
        compared by the same check first and the best is kept (``self.tuning``).
        """
        dataset = ensure_dataset(dataset, "training set")
        if dataset.num_rows == 0:
            raise ProxyError(f"cannot fit the {self.name} proxy on 0 rows")
        if observe is not None and not self.observable:
            observable = ", ".join(n for n in PROXIES.names() if PROXIES.get(n).observable)
            raise ProxyError(
                f"the {self.name} proxy cannot be observed epoch by epoch, which forgetting events need; "
                f"use one of: {observable}"
            )
        if task is None:
            task_cls = ImageClassificationTask if self.modality == "image" else TextClassificationTask
            task = task_cls.from_dataset(dataset)
        check_proxy_modality(self, task.modality)
        self.task = task
        labels = self.task.labels_for_training(dataset)
        self.epoch_predictions = None
        self.self_check = self.tuning = None
        self._unlabeled = None if unlabeled is None else ensure_dataset(unlabeled, "unlabeled pool")
        self._start_fit(dataset, self._unlabeled)
        # tune and check before the final fit: some libraries (fastText) misbehave when other models are trained or
        # loaded in a process after the one that is kept
        checked = self._tune(dataset, labels) if self._tuning_space() else None
        given, self._given_check = getattr(self, "_given_check", None), None
        if given is not None and checked is None:  # checked on these very rows already (`auto`'s comparison)
            self.self_check, checked = given
        elif self.hyperparameters["self_check"] or checked is not None:
            self.self_check, checked = self._check(dataset, labels, checked)
        if observe is None:
            self._fit(dataset, labels)
        else:
            self.epoch_predictions = np.asarray(self._fit_observed(dataset, labels, observe), dtype=np.int16)
        if checked is not None:
            t0 = time.perf_counter()
            self._after_check(*checked)
            self.self_check["seconds"] = round(self.self_check["seconds"] + time.perf_counter() - t0, 4)
        self._unlabeled = None
        return self

    def predict_proba(self, dataset, batch_size: int = 8192, progress: bool = False) -> np.ndarray:
        """Class probabilities, float32 ``[N, num_labels]``, columns in label-id order, rows summing to 1."""
        self._check_fitted()
        dataset = ensure_dataset(dataset, "dataset")
        if dataset.num_rows == 0:
            return np.zeros((0, self.task.num_labels), dtype=np.float32)
        probs = np.asarray(self._predict_proba(dataset, batch_size, progress), dtype=np.float32)
        if probs.shape != (dataset.num_rows, self.task.num_labels):
            raise ProxyError(f"{self.name} returned probabilities of shape {probs.shape}")
        return probs

    def embed(self, dataset, batch_size: int = 8192, progress: bool = False) -> np.ndarray:
        """The proxy's representation of each row, float32 ``[N, D]``."""
        self._check_fitted()
        dataset = ensure_dataset(dataset, "dataset")
        out = np.asarray(self._embed(dataset, batch_size, progress), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != dataset.num_rows:
            raise ProxyError(f"{self.name} returned embeddings of shape {out.shape}")
        return out

    def score(
        self, dataset, *, probs: bool = True, embeddings: bool = False, batch_size: int = 8192, progress: bool = False
    ) -> ProxyOutputs:
        """Compute the requested outputs for every row of ``dataset``."""
        return ProxyOutputs(
            num_rows=dataset.num_rows,
            probs=self.predict_proba(dataset, batch_size, progress) if probs else None,
            embeddings=self.embed(dataset, batch_size, progress) if embeddings else None,
        )

    def label_free_embeddings(self, pool, task: ClassificationTask) -> np.ndarray:
        """Embeddings of every pool row learnt without labels (for a first labeled set chosen by ``typiclust`` or
        ``kcenters``), float32 ``[N, D]``. Only proxies whose representation needs no labels have them."""
        having = ", ".join(
            n for n in PROXIES.names() if PROXIES.get(n).label_free_embeddings is not Proxy.label_free_embeddings
        )
        raise ConfigError(
            f"the {self.name} proxy learns its representation from labels, so it has none before the first labels; "
            f"use a proxy with label-free embeddings ({having}) or initial strategy random"
        )

    def prepare_shared(self, pool, task: ClassificationTask, dist) -> None:
        """Under several processes, before the main process fits: work on the pool that every process can share
        (the ``embedding`` proxy encodes a share of the pool on each). Default: nothing."""
        return None

    def attach_pool(self, pool) -> None:
        """Hand a fitted or loaded proxy the pool it was fitted with, so that proxies with pool-level caches
        (``tfidf``, ``embedding``) score from the cache; a different pool is ignored. Default: nothing."""
        return None

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted proxy to a folder (created if needed)."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = {
            "proxy": self.name,
            "seed": self.seed,
            "hyperparameters": self.hyperparameters,
            "task": self.task.to_dict(),
        }
        (path / PROXY_CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
        self._save(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Proxy:
        """Load a proxy saved with `save`; called on `Proxy` it picks the right class from the saved config."""
        path = Path(path)
        config_file = path / PROXY_CONFIG_NAME
        if not config_file.exists():
            raise ProxyError(f"{path} is not a saved proxy (no {PROXY_CONFIG_NAME})")
        config = json.loads(config_file.read_text())
        proxy_cls = PROXIES.get(config["proxy"])
        if cls is not Proxy and not issubclass(proxy_cls, cls):
            raise ProxyError(f"{path} holds a {config['proxy']!r} proxy, not {cls.__name__}")
        proxy = proxy_cls(seed=config["seed"], **config["hyperparameters"])
        proxy.task = ClassificationTask.from_dict(config["task"])
        proxy._load(path)
        return proxy

    # -- self-check and tuning ---------------------------------------------------------------------------------
    def _check_rows(self, labels: np.ndarray) -> np.ndarray | None:
        """The labeled rows a self-check looks at (all, or CHECK_MAX_ROWS drawn under the seed); None: too few."""
        n = len(labels)
        if n < CHECK_MIN_ROWS or len(np.unique(labels)) < 2:
            return None
        if n <= CHECK_MAX_ROWS:
            return np.arange(n)
        return np.sort(np.random.default_rng([self.seed, 7]).choice(n, CHECK_MAX_ROWS, replace=False))

    def _folds(self, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        order = np.random.default_rng([self.seed, 11]).permutation(rows)
        if self.cv_folds < 2:  # a held-out fifth
            cut = max(1, len(order) // 5)
            return [(np.sort(order[cut:]), np.sort(order[:cut]))]
        parts = np.array_split(order, self.cv_folds)
        return [(np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(p)) for i, p in enumerate(parts)]

    def _cv_scores(self, dataset, labels: np.ndarray, folds, params: dict[str, Any]) -> np.ndarray:
        """Out-of-fold class scores ``[N, num_labels]`` (log-probabilities or logits; -inf where not computed): each
        fold's rows scored by a copy of this proxy (with ``params`` changed) trained on the other folds."""
        out = np.full((len(labels), self.task.num_labels), -np.inf)
        settings = {**self.hyperparameters, **params, "self_check": False, "tune": False}
        for train_idx, test_idx in folds:
            clone = type(self)(seed=self.seed, **settings)
            clone.fit(dataset.select(train_idx), self.task, unlabeled=self._unlabeled)
            out[test_idx] = np.log(np.clip(clone.predict_proba(dataset.select(test_idx)), 1e-12, None))
        return out

    def _after_check(self, oof_scores: np.ndarray, labels: np.ndarray) -> None:
        """Hook: use the self-check's out-of-fold scores (e.g. to calibrate probabilities). Default: nothing."""
        return None

    def _tuning_space(self) -> list[dict[str, Any]]:
        """The settings `fit` compares before training (nothing unless ``tune``): ``search_space`` less the settings
        that touch what the user set explicitly, without repeats. Proxies that choose a setting on every fit by default
        (the ``hybrid``'s ``embedding_weight="auto"``) extend it."""
        space: list[dict[str, Any]] = []
        for params in self.search_space if self.hyperparameters["tune"] else ():
            if not set(params) & self.explicit and params not in space:
                space.append(params)
        return space

    def _tune(self, dataset, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Choose the settings of `_tuning_space` with the best cross-validated accuracy on the labeled rows; at most
        TUNE_MAX_TRIALS settings, in order (the first of equals wins), so the choice is reproducible."""
        space = self._tuning_space()
        rows = self._check_rows(labels)
        if len(space) < 2 or rows is None:
            self.tuning = {"chosen": {}, "trials": [], "note": "nothing to tune" if len(space) < 2 else "too few rows"}
            return None
        folds = self._folds(rows)
        trials, best = [], None
        t0 = time.perf_counter()
        errors = []
        for params in space[:TUNE_MAX_TRIALS]:
            t1 = time.perf_counter()
            try:
                scores = self._cv_scores(dataset, labels, folds, params)
            except (
                ProxyError
            ) as err:  # e.g. a setting under which fastText diverges: that setting loses, the run goes on
                trials.append({"params": params, "error": str(err), "seconds": round(time.perf_counter() - t1, 4)})
                errors.append(err)
                continue
            accuracy = float((scores[rows].argmax(1) == labels[rows]).mean())
            trials.append(
                {"params": params, "accuracy": round(accuracy, 6), "seconds": round(time.perf_counter() - t1, 4)}
            )
            if best is None or accuracy > best[0]:
                best = (accuracy, params, scores)
        if best is None:
            raise errors[0]
        self.hyperparameters.update(best[1])
        self._settings_changed(best[1])
        self.tuning = {
            "chosen": best[1],
            "trials": trials,
            "folds": len(folds),
            "seconds": round(time.perf_counter() - t0, 4),
        }
        return rows, best[2]

    def _settings_changed(self, params: dict[str, Any]) -> None:
        """Hook: tuning changed these hyperparameters (e.g. rebuild features). Default: nothing."""
        return None

    def _check(self, dataset, labels: np.ndarray, checked=None) -> tuple[dict[str, Any], tuple | None]:
        """Estimate this proxy's accuracy on the labeled rows it was given (k-fold cross-validation, or a held-out
        fifth for proxies with ``cv_folds`` = 1), beside what always guessing the majority class scores. Returns the
        record and ``(out-of-fold scores, labels with -1 where untested)`` for `_after_check`."""
        t0 = time.perf_counter()
        if checked is not None:
            rows, scores = checked
        else:
            rows = self._check_rows(labels)
            if rows is None:
                return {"accuracy": None, "rows": int(len(labels)), "note": "too few labeled rows or classes"}, None
            folds = self._folds(rows)
            scores = self._cv_scores(dataset, labels, folds, {})
        tested = np.isfinite(scores).any(axis=1)
        tested[np.setdiff1d(np.arange(len(labels)), rows)] = False
        y = labels[tested]
        accuracy = float((scores[tested].argmax(1) == y).mean())
        majority = float(np.bincount(y).max() / len(y))
        # near chance: not clearly above the majority-class guess (two binomial standard errors, at least 2 points)
        threshold = majority + max(0.02, 2 * np.sqrt(majority * (1 - majority) / len(y)))
        method = f"{self.cv_folds}-fold cross-validation" if self.cv_folds >= 2 else "held-out fifth"
        result = {
            "accuracy": round(accuracy, 6),
            "majority_accuracy": round(majority, 6),
            "near_chance": bool(accuracy < threshold),
            "method": method,
            "rows": int(len(y)),
            "seconds": round(time.perf_counter() - t0, 4),
        }
        if result["near_chance"]:
            others = ", ".join(
                n for n in PROXIES.names() if n != self.name and PROXIES.get(n).modality == self.modality
            )
            logger.warning(
                "the %s proxy's self-checked accuracy is %.1f%% (%s on %d labeled rows), not clearly better than "
                "always guessing the majority class (%.1f%%): its selection may be close to random. Try --proxy "
                "auto, another proxy (%s), tune=true in --proxy-kwargs, or more labeled rows.",
                self.name, 100 * accuracy, method, len(y), 100 * majority, others,
            )  # fmt: skip
        return result, (np.where(tested[:, None], scores, -np.inf), np.where(tested, labels, -1))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}(seed={self.seed}, {args})"

    # -- for subclasses -------------------------------------------------------------------------------------
    def _start_fit(self, dataset, unlabeled) -> None:
        """Called first in `fit`; by default runs `_prepare` on the pool when there is one."""
        if unlabeled is not None:
            self._prepare(unlabeled)

    def _prepare(self, unlabeled) -> None:
        """Look at the pool's texts before `_fit` (default: nothing)."""
        return None

    @abstractmethod
    def _fit(self, dataset, labels: np.ndarray) -> None: ...

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        """Train like `_fit` and return the predicted class of every ``observe`` row after each epoch."""
        raise NotImplementedError

    @abstractmethod
    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray: ...

    @abstractmethod
    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray: ...

    @abstractmethod
    def _save(self, path: Path) -> None: ...

    @abstractmethod
    def _load(self, path: Path) -> None: ...

    @property
    def is_fitted(self) -> bool:
        return self.task is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"the {self.name} proxy is not fitted; call fit(dataset) or Proxy.load(path) first")


PROXIES: Registry[type[Proxy]] = Registry("proxy")


def register_proxy(name: str):
    """Class decorator: make a `Proxy` subclass available by ``name`` (in YAML, the CLI and `SelectionConfig`)."""
    return PROXIES.register(name)


def check_proxy_modality(proxy: str | Proxy, modality: str) -> None:
    """Raise a `ConfigError` naming the fix when ``proxy`` cannot read ``modality`` inputs ("text" or "image")."""
    proxy_cls = PROXIES.get(proxy) if isinstance(proxy, str) else type(proxy)
    if proxy_cls.modality == modality:
        return
    fitting = ", ".join(n for n in PROXIES.names() if PROXIES.get(n).modality == modality) or "none registered"
    if modality == "image":
        raise ConfigError(f"the {proxy_cls.name} proxy reads text, not images; image proxies: {fitting}")
    raise ConfigError(
        f"the {proxy_cls.name} proxy reads images: pass the image column (--image-column NAME, image_column=...) "
        f"or use a text proxy: {fitting}"
    )


def build_proxy(proxy: str | Proxy, seed: int = 0, **kwargs: Any) -> Proxy:
    """A proxy instance from a registered name (with hyperparameters) or an instance (returned as is)."""
    if isinstance(proxy, Proxy):
        if kwargs:
            raise ConfigError("proxy_kwargs cannot be combined with a Proxy instance; set them on the instance")
        return proxy
    return PROXIES.get(proxy)(seed=seed, **kwargs)
