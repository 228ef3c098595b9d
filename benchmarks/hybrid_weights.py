"""Which weight of the encoder half suits the ``hybrid`` proxy, and can the labeled rows tell?

For one pool (the same pool and evaluation rows as ``benchmarks.vs_small_text``), random labeled sets of a few sizes:
a linear SVM (the hybrid's head, C 1) on ``[tfidf | w * encoder]`` for several ``w``, scored two ways: the 3-fold
cross-validation on the labeled rows (what the hybrid's self-check sees when ``embedding_weight`` is ``"auto"``) and
the accuracy on the evaluation rows (what matters). The features are svp-hf's own (TF-IDF fitted on the pool,
all-MiniLM-L6-v2 mean-pooled at 256 tokens), read from ``--feature-cache`` when the harness computed them there.

    python -m benchmarks.hybrid_weights --dataset ../shared/data/banking77 --feature-cache /work/svp_cache
    python -m benchmarks.hybrid_weights --dataset ../shared/data/imdb --pool-size 10000 --eval-size 5000 \\
        --feature-cache /work/svp_cache
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.vs_small_text import load_data  # noqa: E402  the same pool and evaluation rows


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="../shared/data/banking77")
    p.add_argument("--split", default="train")
    p.add_argument("--pool-size", type=int, default=None)
    p.add_argument("--eval-split", default="test")
    p.add_argument("--eval-size", type=int, default=None)
    p.add_argument("--sizes", default="1000,3000", help="labeled rows, comma-separated")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--weights", default="0,0.5,1,2,4")
    p.add_argument("--feature-cache", default=None, help="svp-hf's feature cache folder ($SVP_HF_CACHE)")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = make_parser().parse_args(argv)
    if args.feature_cache:
        os.environ["SVP_HF_CACHE"] = args.feature_cache
    import scipy.sparse as sp
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import LinearSVC

    from svp_hf.data import task_from_dataset
    from svp_hf.proxies.features import pool_features, transform_many
    from svp_hf.proxies.linear import ENCODER_SETTINGS, TFIDF_SETTINGS, _encoder_features, _tfidf_features

    pool, _, evaluation = load_data(args)
    task = task_from_dataset(pool)
    texts = [t for b in task.iter_texts(pool) for t in b.to_pylist()]
    eval_texts = [t for b in task.iter_texts(evaluation) for t in b.to_pylist()]
    y, y_eval = task.encode_labels(pool), task.encode_labels(evaluation)
    h = {**ENCODER_SETTINGS, **TFIDF_SETTINGS}
    tfidf = pool_features(_tfidf_features(h), texts)[0]
    encoder = pool_features(_encoder_features(h), texts)[0]
    x_tfidf, x_enc = tfidf.matrix, sp.csr_matrix(encoder.matrix)
    e_tfidf = tfidf.extractor.transform(eval_texts)
    e_enc = sp.csr_matrix(transform_many(encoder.extractor, eval_texts))
    weights = [float(w) for w in args.weights.split(",")]
    rows = []
    print(f"{args.dataset}: pool {len(texts)}, eval {len(eval_texts)}; cv = 3-fold on the labeled rows, test = eval")
    for n in (int(s) for s in args.sizes.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            idx = np.random.default_rng(seed).choice(len(texts), n, replace=False)
            cells = []
            for w in weights:
                x = sp.hstack([x_tfidf, w * x_enc]).tocsr() if w else x_tfidf
                e = sp.hstack([e_tfidf, w * e_enc]).tocsr() if w else e_tfidf
                folds = StratifiedKFold(3, shuffle=True, random_state=seed)
                cv = float(cross_val_score(LinearSVC(C=1.0), x[idx], y[idx], cv=folds).mean())
                test = float((LinearSVC(C=1.0).fit(x[idx], y[idx]).predict(e) == y_eval).mean())
                rows.append({"labeled": n, "seed": seed, "weight": w, "cv": cv, "test": test})
                cells.append(f"w {w:g}: cv {100 * cv:.1f} test {100 * test:.1f}")
            print(f"{n} rows, seed {seed}: " + " | ".join(cells), flush=True)
    return rows


if __name__ == "__main__":
    main()
