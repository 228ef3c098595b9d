"""The fastText proxy: the paper's text proxy, built on the real `fasttext` library (package ``fasttext-numpy2``).

Facts this module is built around (measured here, see README "fastText notes"):

- ``predict(list, k=-1)`` returns every label per row, sorted by probability, with a +1e-5 floor on each
  probability. We map labels back to label-id order and remove the floor; the result matches
  ``softmax(sentence_vector @ output_matrix.T)`` to ~1e-7.
- fastText's training depends on the state of the process it runs in: after a model has been trained or used there,
  training another one sometimes stops with ``RuntimeError: Encountered NaN`` even at small learning rates, and
  after a transformers encoder ran in the process, the first training gave a different, near one-hot model than
  the same training in a fresh process (seen in the test suite). So every training runs in a fresh Python process
  (a few hundred milliseconds) and the model is loaded from its file, which makes results independent of what the
  process did before. A NaN there is real divergence.
- ``predict`` rejects strings containing ``\\n``: the preprocessing collapses all whitespace.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..data import check_max_words
from ..errors import ConfigError, MissingDependencyError, ProxyError
from ..io import scratch_dir
from .base import Proxy, register_proxy

logger = logging.getLogger(__name__)

LABEL_PREFIX = "__label__"
# epochs="auto": enough passes that small labeled sets learn, few enough that large pools stay cheap
AUTO_ROW_PASSES, AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS = 150_000, 5, 25
MODEL_FILE = "model.bin"


def import_fasttext():
    try:
        import fasttext
    except ImportError as err:
        raise MissingDependencyError(
            "the fasttext proxy needs the fastText library: pip install 'svp-hf[fasttext]' (fasttext-numpy2)"
        ) from err
    return fasttext


def preprocess(texts: pa.Array, lowercase: bool = True, space_punctuation: bool = True) -> pa.Array:
    """The reference's normalisation, vectorised in Arrow: lowercase, punctuation and symbols spaced out as their
    own tokens, and every whitespace character that is not a space (newlines included) turned into one.

    Runs of spaces are left alone: fastText splits on them anyway, and collapsing them costs more than the rest
    of the preprocessing together.
    """
    if lowercase:
        texts = pc.utf8_lower(texts)
    if space_punctuation:
        texts = pc.replace_substring_regex(texts, pattern=r"([\pP\pS])", replacement=r" \1 ")
    return pc.replace_substring_regex(texts, pattern=r"[\t\n\r\f\v\x00]", replacement=" ")


@register_proxy("fasttext")
class FastTextProxy(Proxy):
    """fastText supervised classifier (Joulin et al. 2017) as a proxy.

    Hyperparameters (``--proxy-kwargs``): fastText's own names, plus ``epochs``.

    - ``lr`` 1.0 and ``epochs`` ``"auto"``: the reference used lr 0.05 x 5 epochs, tuned for 3.6M rows; on the
      small labeled sets of active learning (300 rows) that stays at chance level. ``"auto"`` trains
      ``clip(ceil(150_000 / rows), 5, 25)`` epochs: 25 on a few thousand rows, 10 on 15k, 5 from 30k rows on,
      so large pools do not pay for passes they do not need. Measured on AG News (BENCHMARKS.md, "fastText
      proxy defaults"): 66% / 80% / 89% test accuracy from 300 / 1,500 / 15,183 rows, against 29% / 30% / 63%
      with the reference's settings. An integer sets the epochs directly.
    - ``dim`` 10, ``wordNgrams`` 2, ``minCount`` 1: the reference's.
    - ``bucket`` 1,000,000: hash buckets for word bigrams (40 MB at dim 10); fastText's default of 2M at dim
      100 makes an 800 MB model, the reference used 10M.
    - ``thread`` 1: fastText is deterministic under a seed only with one thread. More threads train faster
      but results then vary from run to run.
    - ``lowercase`` / ``space_punctuation``: the reference's text normalisation.
    - ``max_words`` None: read only the first N words of each text, as a target with a short input reads them
      (a bert-tiny on 64 tokens sees about 50 words of an IMDB review). On IMDB the proxy reading whole reviews
      picked rows that trained a 64-token target 2.3-6.2 points worse than the target's own picks; with 50 words,
      0.3-3.5 points (BENCHMARKS.md, IMDB). None reads whole texts.

    ``embed`` returns fastText's sentence vectors (the average of word and bigram vectors that feeds the
    classifier), float32 ``[N, dim]``.
    """

    observable = True
    # `tune`: tried in this order (3-fold on the labeled rows): the defaults, then wider, longer, unigram models
    search_space = [
        {},
        {"dim": 50},
        {"epochs": 50},
        {"dim": 50, "epochs": 50},
        {"wordNgrams": 1},
        {"dim": 50, "epochs": 50, "lr": 0.5},
        {"dim": 100, "epochs": 50, "wordNgrams": 1},
        {"epochs": 25, "lr": 0.25},
    ]
    defaults = {
        "lr": 1.0,
        "epochs": "auto",
        "dim": 10,
        "wordNgrams": 2,
        "minCount": 1,
        "bucket": 1_000_000,
        "thread": 1,
        "minn": 0,
        "maxn": 0,
        "lrUpdateRate": 100,
        "lowercase": True,
        "space_punctuation": True,
        "max_words": None,
    }

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        self.resolve_epochs(1)  # validate early
        check_max_words(self.hyperparameters["max_words"], "fasttext")
        self.model = None
        self.fitted_epochs: int | None = None

    # -- training -------------------------------------------------------------------------------------------
    def resolve_epochs(self, num_rows: int) -> int:
        epochs = self.hyperparameters["epochs"]
        if epochs == "auto":
            return int(min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, math.ceil(AUTO_ROW_PASSES / max(num_rows, 1)))))
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"fasttext epochs must be a positive integer or 'auto', got {epochs!r}")
        return epochs

    def _train_args(self, num_rows: int) -> dict[str, Any]:
        h = self.hyperparameters
        args = {k: h[k] for k in ("lr", "dim", "wordNgrams", "minCount", "bucket", "thread", "minn", "maxn")}
        args.update(
            epoch=self.resolve_epochs(num_rows), lrUpdateRate=h["lrUpdateRate"], loss="softmax", seed=self.seed
        )
        args["verbose"] = 0
        args["label"] = LABEL_PREFIX
        return args

    def _fit(self, dataset, labels: np.ndarray) -> None:
        fasttext = import_fasttext()
        args = self._train_args(dataset.num_rows)
        self.fitted_epochs = args["epoch"]
        with scratch_dir("svp_fasttext_") as tmp:
            train_file = os.path.join(tmp, "train.txt")
            self._write_training_file(dataset, labels, train_file)
            self.model = self._train(fasttext, train_file, args, os.path.join(tmp, MODEL_FILE))

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        """fastText trains in one call and cannot be paused between epochs, so this trains one model per length
        e = 1..E (same seed and learning rate; fastText decays the rate to 0 over each run) and records each
        model's predictions: the trajectory of a model trained longer and longer. It costs E(E+1)/2 epochs
        (55 for E=10) and ends with the same model a plain `fit` gives."""
        fasttext = import_fasttext()
        args = self._train_args(dataset.num_rows)
        epochs = args["epoch"]
        self.fitted_epochs = epochs
        out = np.empty((epochs, observe.num_rows), dtype=np.int16)
        with scratch_dir("svp_fasttext_") as tmp:
            train_file = os.path.join(tmp, "train.txt")
            self._write_training_file(dataset, labels, train_file)
            for e in range(1, epochs + 1):
                self.model = self._train(fasttext, train_file, {**args, "epoch": e}, os.path.join(tmp, MODEL_FILE))
                out[e - 1] = self._predict_proba(observe, 8192, False).argmax(axis=1)
        return out

    def _train(self, fasttext, train_file: str, args: dict[str, Any], model_path: str):
        return _train_in_fresh_process(train_file, args, model_path)

    def _write_training_file(self, dataset, labels: np.ndarray, path: str) -> None:
        h = self.hyperparameters
        offset = 0
        with open(path, "w", encoding="utf-8") as f:
            for batch in self.task.iter_texts(dataset, max_words=h["max_words"]):
                texts = preprocess(batch, h["lowercase"], h["space_punctuation"])
                ids = pa.array(labels[offset : offset + len(batch)]).cast(pa.string())
                offset += len(batch)
                lines = pc.binary_join_element_wise(LABEL_PREFIX, ids, " ", texts, "")
                f.write("\n".join(lines.to_pylist()))
                f.write("\n")

    # -- scoring --------------------------------------------------------------------------------------------
    def _batches(self, dataset, batch_size: int, progress: bool, what: str):
        """Preprocessed Arrow text batches. The next batch is read and preprocessed in a helper thread while
        fastText works on the current one: Arrow compute runs without the GIL, so this hides the
        preprocessing behind fastText's single-threaded predict."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        h = self.hyperparameters
        batches = self.task.iter_texts(dataset, batch_size, max_words=h["max_words"])

        def next_batch():
            batch = next(batches, None)
            return None if batch is None else preprocess(batch, h["lowercase"], h["space_punctuation"])

        bar = tqdm(total=dataset.num_rows, desc=f"fasttext {what}", unit="rows", disable=not progress, leave=False)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(next_batch)
            while (texts := pending.result()) is not None:
                pending = pool.submit(next_batch)
                yield texts
                bar.update(len(texts))
        bar.close()

    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        label_names = np.array(self.model.labels)  # e.g. ["__label__3", "__label__0", ...]
        order = np.argsort(label_names)
        sorted_names = label_names[order]
        # fastText label i in sorted order -> our class id
        class_of_sorted = np.array([int(n[len(LABEL_PREFIX) :]) for n in sorted_names], dtype=np.int64)
        out = np.zeros((dataset.num_rows, self.task.num_labels), dtype=np.float32)
        start = 0
        for texts in self._batches(dataset, batch_size, progress, "scoring"):
            # fastText's batch call; `predict(list)` wraps it with a per-row Python check and "\n" append,
            # which the Arrow preprocessing has already made unnecessary.
            if hasattr(self.model.f, "multilinePredict"):
                lines = pc.binary_join_element_wise(texts, "\n", "").to_pylist()
                labels, probs = self.model.f.multilinePredict(lines, -1, 0.0, "strict")
            else:  # a fastText build without the batch primitive
                labels, probs = self.model.predict(texts.to_pylist(), k=-1)
            labels = np.asarray(labels)
            probs = np.asarray(probs, dtype=np.float64) - 1e-5  # fastText adds 1e-5 to every probability
            np.clip(probs, 0.0, None, out=probs)
            cols = class_of_sorted[np.searchsorted(sorted_names, labels)]
            block = np.zeros((len(texts), self.task.num_labels), dtype=np.float64)
            np.put_along_axis(block, cols, probs, axis=1)
            block /= block.sum(axis=1, keepdims=True)
            out[start : start + len(texts)] = block
            start += len(texts)
        return out

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        # The library has no batch call for sentence vectors, so this is one C++ call per row.
        dim = int(self.hyperparameters["dim"])
        out = np.zeros((dataset.num_rows, dim), dtype=np.float32)
        start = 0
        vector = self.model.get_sentence_vector
        for texts in self._batches(dataset, batch_size, progress, "embedding"):
            if len(texts):
                out[start : start + len(texts)] = np.stack([vector(t) for t in texts.to_pylist()])
            start += len(texts)
        return out

    # -- self-check and tuning -------------------------------------------------------------------------------
    def _cv_scores(self, dataset, labels: np.ndarray, folds, params: dict[str, Any]) -> np.ndarray:
        """Out-of-fold log-probabilities, every fold trained and scored in one fresh process, so that no extra
        model ever enters this one (see the module notes on fastText's process state)."""
        saved = self.hyperparameters
        self.hyperparameters = {**saved, **params}
        try:
            for key in ("lr", "dim", "wordNgrams"):
                value = self.hyperparameters[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ConfigError(f"fasttext {key} must be a positive number, got {value!r}")
            out = np.full((len(labels), self.task.num_labels), -np.inf)
            with scratch_dir("svp_fasttext_cv_") as tmp:
                spec = {"num_labels": self.task.num_labels, "prefix": LABEL_PREFIX, "folds": []}
                for i, (train_idx, test_idx) in enumerate(folds):
                    fold = {
                        "train": os.path.join(tmp, f"train_{i}.txt"),
                        "test": os.path.join(tmp, f"test_{i}.txt"),
                        "out": os.path.join(tmp, f"probs_{i}.npy"),
                        "args": {**self._train_args(len(train_idx)), "label": LABEL_PREFIX},
                    }
                    self._write_training_file(dataset.select(train_idx), labels[train_idx], fold["train"])
                    with open(fold["test"], "w", encoding="utf-8") as f:
                        for texts in self._batches(dataset.select(test_idx), 8192, False, "self-check"):
                            f.write("".join(t + "\n" for t in texts.to_pylist()))
                    spec["folds"].append(fold)
                with open(os.path.join(tmp, "spec.json"), "w") as f:
                    json.dump(spec, f)
                done = subprocess.run(
                    [sys.executable, "-c", _CV_CODE, os.path.join(tmp, "spec.json")], capture_output=True, text=True
                )
                if done.returncode == 3 and "NaN" in done.stderr:
                    raise _divergence_error(spec["folds"][0]["args"])
                if done.returncode != 0:
                    raise ProxyError(f"fastText self-check failed in a fresh process: {done.stderr.strip()[-500:]}")
                for fold, (_, test_idx) in zip(spec["folds"], folds):
                    out[test_idx] = np.log(np.clip(np.load(fold["out"]), 1e-12, None))
            return out
        finally:
            self.hyperparameters = saved

    def _settings_changed(self, params: dict[str, Any]) -> None:
        self.resolve_epochs(1)

    # -- persistence ----------------------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        self.model.save_model(str(path / MODEL_FILE))

    def _load(self, path: Path) -> None:
        self.model = _load_model(str(path / MODEL_FILE))


def _load_model(path: str):
    fasttext = import_fasttext()
    with contextlib.redirect_stderr(io.StringIO()):  # load_model prints an obsolete warning
        return fasttext.load_model(path)


# Trains and scores the folds of a self-check in a fresh process; probabilities in label-id order, floor removed.
_CV_CODE = """
import json, sys
import numpy as np, fasttext
spec = json.load(open(sys.argv[1]))
n = len(spec["prefix"])
for fold in spec["folds"]:
    try:
        model = fasttext.train_supervised(input=fold["train"], **fold["args"])
    except RuntimeError as err:
        print(err, file=sys.stderr); sys.exit(3)
    with open(fold["test"], encoding="utf-8") as f:
        lines = f.read().split("\\n")[:-1]
    out = np.zeros((len(lines), spec["num_labels"]))
    if lines:
        labels, probs = model.predict(lines, k=-1)
        for i, (names, values) in enumerate(zip(labels, probs)):
            for name, value in zip(names, values):
                out[i, int(name[n:])] = max(float(value) - 1e-5, 0.0)
        out /= np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
    np.save(fold["out"], out)
"""


def _divergence_error(args: dict[str, Any]) -> ProxyError:
    return ProxyError(
        f"fastText diverged (Encountered NaN) with lr={args['lr']}, epochs={args['epoch']}, dim={args['dim']}; "
        "lower the learning rate, e.g. --proxy-kwargs '{\"lr\": 0.1}'"
    )


def _train_in_fresh_process(train_file: str, args: dict[str, Any], model_path: str):
    code = (
        "import json, sys, fasttext\n"
        "args = json.loads(sys.argv[1])\n"
        "try:\n"
        "    m = fasttext.train_supervised(input=sys.argv[2], **args)\n"
        "except RuntimeError as err:\n"
        "    print(err, file=sys.stderr); sys.exit(3)\n"
        "m.save_model(sys.argv[3])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args), train_file, model_path], capture_output=True, text=True
    )
    if done.returncode == 3 and "NaN" in done.stderr:
        raise _divergence_error(args)
    if done.returncode != 0:
        raise ProxyError(f"fastText training failed in a fresh process: {done.stderr.strip()[-500:]}")
    return _load_model(model_path)
