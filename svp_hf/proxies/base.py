"""The proxy interface: a cheap model that is trained on labeled rows and turns a pool into arrays."""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data import ClassificationTask, ImageClassificationTask, TextClassificationTask, ensure_dataset
from ..errors import ConfigError, NotFittedError, ProxyError
from ..registry import Registry

PROXY_CONFIG_NAME = "proxy_config.json"


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
    """

    num_rows: int
    probs: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    forgetting: np.ndarray | None = None
    embeddings_shard: tuple[int, int] | None = None

    def __post_init__(self):
        for name in ("probs", "embeddings", "forgetting"):
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

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        unknown = sorted(set(hyperparameters) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"unknown {self.name} proxy argument(s) {unknown}; valid: {', '.join(sorted(self.defaults))}"
            )
        self.seed = int(seed)
        self.hyperparameters: dict[str, Any] = {**self.defaults, **hyperparameters}
        self.task: ClassificationTask | None = None
        self.epoch_predictions: np.ndarray | None = None

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
        if unlabeled is not None:
            self._prepare(ensure_dataset(unlabeled, "unlabeled pool"))
        if observe is None:
            self._fit(dataset, labels)
        else:
            self.epoch_predictions = np.asarray(self._fit_observed(dataset, labels, observe), dtype=np.int16)
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

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}(seed={self.seed}, {args})"

    # -- for subclasses -------------------------------------------------------------------------------------
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
