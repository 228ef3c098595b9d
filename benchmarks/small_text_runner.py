"""One small-text active-learning run, for benchmarks/vs_small_text.py. Runs inside small-text's own virtual
environment (never svp-hf's), as a subprocess: ``PYTHON small_text_runner.py IN.json OUT.json``.

small-text is not a dependency of svp-hf; its environment is made once, outside the repository:

    python3 -m venv /work/st-venv && /work/st-venv/bin/pip install small-text==1.4.1 pandas pyarrow

IN.json holds:
  ``dataset`` (a folder of ``<split>.parquet`` / ``<split>-NNNNN-of-NNNNN.parquet`` files), ``split`` (with an optional
  ``[a:b]`` / ``[a%:b%]`` slice, as in ``datasets``), ``rows`` (positions in that split that make the pool, or null for
  all of it), ``eval_split`` / ``eval_rows`` likewise, ``text_column``, ``label_column``, ``num_classes``,
  ``initial_indices`` (pool positions of the initial labeled set, shared with the svp-hf runs), ``budgets`` (labeled
  row counts, increasing), ``seed``, ``strategy`` (``breaking_ties`` or ``random``).

OUT.json gets: the fingerprints of the pool and eval rows as read here (the harness checks they match its own),
``vectorize_s`` (the one-time TF-IDF fit on the pool texts and transform of pool and eval), and for the initial set and
every budget: ``labeled``, ``accuracy`` on the eval split of the classifier trained on exactly those rows, ``fit_s``
(training that classifier) and ``query_s`` (the query it made to reach the next budget; 0 for the last).

The setup: sklearn ``TfidfVectorizer`` (unigrams, ``sublinear_tf=True``, ``min_df=2``) fitted on the pool texts,
small-text's ``ConfidenceEnhancedLinearSVC`` through ``SklearnClassifierFactory``, ``PoolBasedActiveLearner``, one
query per budget step.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sys
import time

import numpy as np

STRATEGIES = ("breaking_ties", "random")


def split_files(dataset: str, name: str) -> list[str]:
    """The parquet files of split ``name`` in ``dataset``, in shard order."""
    for pattern in (f"{name}.parquet", f"{name}-*.parquet", os.path.join("data", f"{name}-*.parquet")):
        files = sorted(glob.glob(os.path.join(dataset, pattern)))
        if files:
            return files
    raise FileNotFoundError(f"no parquet files for split {name!r} in {dataset}")


def _bound(text: str, n: int) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.endswith("%"):
        return int(round(float(text[:-1]) * n / 100))
    value = int(text)
    return value if value >= 0 else n + value


def read_split(dataset: str, split: str, rows, text_column: str, label_column: str):
    """Texts and label ids of ``split`` (``name`` or ``name[a:b]``), then of its positions ``rows`` if given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    match = re.fullmatch(r"\s*([\w.-]+)\s*(?:\[\s*([^:\]]*)\s*:\s*([^\]]*)\s*\])?\s*", split)
    if not match:
        raise ValueError(f"cannot read split {split!r}: use NAME or NAME[a:b]")
    name, start, stop = match.groups()
    table = pa.concat_tables(
        [pq.read_table(f, columns=[text_column, label_column]) for f in split_files(dataset, name)]
    )
    texts = table.column(text_column).to_pylist()
    labels = np.asarray(table.column(label_column).to_pylist(), dtype=np.int64)
    if start is not None or stop is not None:
        lo, hi = _bound(start or "", len(texts)), _bound(stop or "", len(texts))
        texts, labels = texts[lo:hi], labels[lo:hi]
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64)
        texts, labels = [texts[i] for i in rows], labels[rows]
    return texts, labels


def fingerprint(texts, labels) -> str:
    """sha256 over the texts and label ids, in order; the harness imports this to hash its `datasets` rows."""
    h = hashlib.sha256()
    for text, label in zip(texts, labels):
        h.update(text.encode("utf-8"))
        h.update(b"\x00")
        h.update(str(int(label)).encode())
        h.update(b"\x01")
    return h.hexdigest()


def accuracies(clf, eval_set, eval_labels) -> tuple[float, float]:
    """The classifier's accuracy, and the accuracy of small-text's own ``predict``.

    small-text's ``SklearnClassifier.predict`` takes the argmax over the columns of the estimator's
    ``predict_proba``, which follow the estimator's ``classes_``: the classes seen in the labeled set. When some class
    has no labeled row yet, column j is not label j and ``predict`` returns shifted labels. The first number maps
    columns back through ``classes_`` (the classifier's real accuracy); the second is what ``predict`` gives.
    """
    proba = clf.predict_proba(eval_set)
    predicted = np.asarray(clf.model.classes_)[proba.argmax(axis=1)]
    via_predict = np.asarray(clf.predict(eval_set))
    return float((predicted == eval_labels).mean()), float((via_predict == eval_labels).mean())


def run(spec: dict) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from small_text import (
        LABEL_UNLABELED,
        BreakingTies,
        ConfidenceEnhancedLinearSVC,
        PoolBasedActiveLearner,
        RandomSampling,
        SklearnClassifierFactory,
        SklearnDataset,
    )
    from small_text.version import get_version

    strategy = spec["strategy"]
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown small-text strategy {strategy!r}; use one of {STRATEGIES}")
    text_column, label_column = spec.get("text_column", "text"), spec.get("label_column", "label")
    pool_texts, pool_labels = read_split(spec["dataset"], spec["split"], spec.get("rows"), text_column, label_column)
    eval_texts, eval_labels = read_split(
        spec["dataset"], spec["eval_split"], spec.get("eval_rows"), text_column, label_column
    )
    num_classes = int(spec["num_classes"])
    seed = int(spec["seed"])
    # RandomSampling draws from numpy's global generator, and so does LinearSVC (random_state=None)
    np.random.seed(seed)

    t0 = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 1), sublinear_tf=True, min_df=2)
    x_pool = vectorizer.fit_transform(pool_texts)
    x_eval = vectorizer.transform(eval_texts)
    vectorize_s = time.perf_counter() - t0

    target_labels = np.arange(num_classes)
    # the pool's labels stay hidden from the learner: it sees a label only through initialize_data / update
    pool = SklearnDataset(x_pool, np.full(len(pool_texts), LABEL_UNLABELED, dtype=np.int64), target_labels)
    eval_set = SklearnDataset(x_eval, eval_labels, target_labels)
    factory = SklearnClassifierFactory(ConfidenceEnhancedLinearSVC(), num_classes)
    query_strategy = BreakingTies() if strategy == "breaking_ties" else RandomSampling()
    learner = PoolBasedActiveLearner(factory, query_strategy, pool)

    initial = np.asarray(spec["initial_indices"], dtype=np.int64)
    t0 = time.perf_counter()
    learner.initialize_data(initial, pool_labels[initial])  # fits the first classifier
    fit_s = time.perf_counter() - t0

    steps = []
    budgets = [int(b) for b in spec["budgets"]]
    for i, size in enumerate([len(initial), *budgets]):
        if len(learner.indices_labeled) != size:
            raise RuntimeError(f"expected {size} labeled rows, the learner has {len(learner.indices_labeled)}")
        accuracy, accuracy_predict = accuracies(learner.classifier, eval_set, eval_labels)
        step = {
            "labeled": size,
            "accuracy": round(accuracy, 6),
            "accuracy_small_text_predict": round(accuracy_predict, 6),
            "classes_seen": int(len(learner.classifier.model.classes_)),
            "fit_s": round(fit_s, 6),
            "query_s": 0.0,
        }
        steps.append(step)
        if i == len(budgets):
            break
        t0 = time.perf_counter()
        queried = learner.query(num_samples=budgets[i] - size)
        step["query_s"] = round(time.perf_counter() - t0, 6)
        t0 = time.perf_counter()
        learner.update(pool_labels[queried])  # retrains on every labeled row
        fit_s = time.perf_counter() - t0

    labeled = np.asarray(learner.indices_labeled)
    if len(np.unique(labeled)) != len(labeled):
        raise RuntimeError("small-text labeled a row twice")
    return {
        "small_text_version": str(get_version()),
        "pool_fingerprint": fingerprint(pool_texts, pool_labels),
        "eval_fingerprint": fingerprint(eval_texts, eval_labels),
        "pool_size": len(pool_texts),
        "eval_size": len(eval_texts),
        "num_features": int(x_pool.shape[1]),
        "vectorize_s": round(vectorize_s, 6),
        "steps": steps,
        # every fit and query; the last fit chose nothing (it only gives the accuracy at the last budget)
        "fit_query_s": round(sum(s["fit_s"] + s["query_s"] for s in steps), 6),
        "selection_s": round(sum(s["fit_s"] + s["query_s"] for s in steps[:-1]), 6),
        "labeled_indices": labeled.tolist(),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: small_text_runner.py IN.json OUT.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    result = run(spec)
    tmp = argv[1] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
