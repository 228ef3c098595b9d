"""``--proxy auto``: pick the proxy by the self-check, on the labeled rows at hand.

No proxy wins everywhere: fastText is the paper's proxy for millions of rows, a linear model on TF-IDF is hard to beat
with a few hundred labeled news articles, and a frozen pretrained encoder wins on short many-class queries. ``auto``
estimates each candidate's accuracy on the labeled rows (the same k-fold self-check every proxy runs) and keeps the
cheapest one within ``margin`` of the best; in active learning the choice is made again every round, as the labeled
set grows.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError
from .base import PROXIES, Proxy, register_proxy

logger = logging.getLogger(__name__)

CHOSEN_DIR = "chosen"


@register_proxy("auto")
class AutoProxy(Proxy):
    """The cheapest candidate proxy whose self-checked accuracy is within ``margin`` of the best candidate's.

    Hyperparameters (``--proxy-kwargs``):

    - ``candidates`` ``["tfidf", "embedding"]``: in order of cost, cheapest first. Candidates whose package is
      missing (``embedding``'s weights from ``svp-hf[minilm]``, ``fasttext``) are skipped with a note. fastText is
      not a default candidate: on labeled sets of hundreds to thousands of rows it checked below TF-IDF on every
      pool measured (BENCHMARKS.md); add it for pools of millions of rows, where it is the paper's proxy.
    - ``margin`` 0.01: how much self-checked accuracy a cheaper proxy may give up (1 point).
    - ``proxy_kwargs`` ``{}``: settings per candidate, e.g. ``{"embedding": {"max_length": 128}}``.

    ``self.chosen`` names the proxy kept; ``self.self_check`` is its check plus every candidate's accuracy.
    Predictions, embeddings and saving are the chosen proxy's.
    """

    defaults = {"candidates": ["tfidf", "embedding"], "margin": 0.01, "proxy_kwargs": {}}
    observable = True
    self_check_default = False  # the candidates check themselves

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        h = self.hyperparameters
        names = h["candidates"]
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"auto proxy: candidates must be a non-empty list of proxy names, got {names!r}")
        for name in names:
            if name == "auto" or name not in PROXIES or PROXIES.get(name).modality != "text":
                text = ", ".join(n for n in PROXIES.names() if n != "auto" and PROXIES.get(n).modality == "text")
                raise ConfigError(f"auto proxy: candidate {name!r} is not a text proxy; choose among {text}")
        if not isinstance(h["margin"], (int, float)) or isinstance(h["margin"], bool) or not 0 <= h["margin"] < 1:
            raise ConfigError(f"auto proxy: margin must be a number in [0, 1), got {h['margin']!r}")
        if not isinstance(h["proxy_kwargs"], dict) or set(h["proxy_kwargs"]) - set(names):
            raise ConfigError('auto proxy: proxy_kwargs maps candidate names to their settings, e.g. {"tfidf": {}}')
        self.hyperparameters["self_check"] = False
        self.inner: Proxy | None = None
        self.chosen: str | None = None

    def _candidates(self) -> list[tuple[str, Proxy]]:
        out = []
        for name in self.hyperparameters["candidates"]:
            kwargs = dict(self.hyperparameters["proxy_kwargs"].get(name, {}))
            kwargs["self_check"] = True
            out.append((name, PROXIES.get(name)(seed=self.seed, **kwargs)))
        return out

    def _start_fit(self, dataset, unlabeled) -> None:
        labels = self.task.labels_for_training(dataset)
        results: dict[str, Any] = {}
        checks: dict[str, tuple] = {}
        best: list[tuple[str, Proxy, float]] = []
        for name, proxy in self._candidates():
            t0 = time.perf_counter()
            proxy.task = self.task
            try:
                proxy._start_fit(dataset, unlabeled)
                check, checked = proxy._check(dataset, labels)
            except MissingDependencyError as err:
                results[name] = {"skipped": str(err)}
                continue
            checks[name] = (check, checked)
            results[name] = {"accuracy": check.get("accuracy"), "seconds": round(time.perf_counter() - t0, 4)}
            if check.get("accuracy") is not None:
                best.append((name, proxy, check["accuracy"]))
        if not best:  # too few rows to check anything: the cheapest available candidate
            available = [n for n in self.hyperparameters["candidates"] if "skipped" not in results.get(n, {})]
            if not available:
                raise MissingDependencyError(f"auto proxy: no candidate could run ({results})")
            name = available[0]
        else:
            top = max(acc for _, _, acc in best)
            name = next(n for n, _, acc in best if acc >= top - float(self.hyperparameters["margin"]))
        self.chosen = name
        self._results = results
        kwargs = dict(self.hyperparameters["proxy_kwargs"].get(name, {}))
        self.inner = PROXIES.get(name)(seed=self.seed, **kwargs)
        if name in checks and checks[name][1] is not None and not self.inner._tuning_space():
            self.inner._given_check = checks[name]  # its fit reuses the comparison's check of the same rows

    def _finish(self) -> None:
        self.self_check = {**(self.inner.self_check or {}), "chosen": self.chosen, "candidates": self._results}
        self.tuning = self.inner.tuning

    def _fit(self, dataset, labels: np.ndarray) -> None:
        self.inner.fit(dataset, self.task, unlabeled=self._unlabeled)
        self._finish()

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        self.inner.fit(dataset, self.task, observe=observe, unlabeled=self._unlabeled)
        self._finish()
        return self.inner.epoch_predictions

    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        return self.inner.predict_proba(dataset, batch_size, progress)

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        return self.inner.embed(dataset, batch_size, progress)

    def label_free_embeddings(self, pool, task) -> np.ndarray:
        """The first candidate that has label-free embeddings, preferring a pretrained encoder when installed."""
        names = sorted(self.hyperparameters["candidates"], key=lambda n: n != "embedding")
        for _, proxy in sorted(self._candidates(), key=lambda c: names.index(c[0])):
            if type(proxy).label_free_embeddings is Proxy.label_free_embeddings:
                continue
            try:
                return proxy.label_free_embeddings(pool, task)
            except MissingDependencyError:
                continue
        return super().label_free_embeddings(pool, task)

    def attach_pool(self, pool) -> None:
        if self.inner is not None:
            self.inner.attach_pool(pool)

    def _save(self, path: Path) -> None:
        self.inner.save(path / CHOSEN_DIR)

    def _load(self, path: Path) -> None:
        self.inner = Proxy.load(path / CHOSEN_DIR)
        self.chosen = self.inner.name
