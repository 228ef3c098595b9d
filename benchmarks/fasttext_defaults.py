"""How well does the fastText proxy learn from labeled sets of the sizes active learning sees?

Trains the `fasttext` proxy (and, for reference, `tfidf`) on random subsets of the AG News train split and
reports test accuracy for a grid of learning rates and epochs. This is the measurement behind the proxy's
default ``lr`` and ``epochs`` (see BENCHMARKS.md).

    python -m benchmarks.fasttext_defaults --data ../shared/data/ag_news \
        --out benchmarks/results/fasttext_defaults.json
    python -m benchmarks.fasttext_defaults --sizes 300 --lrs 0.5 --epochs 25 --seeds 0   # one cell
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np

from svp_hf.io import write_json_atomic


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ag_news")
    p.add_argument("--sizes", default="300,1500,15183")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--lrs", default="0.05,0.1,0.25,0.5,1.0")
    p.add_argument("--epochs", default="5,10,25,50")
    p.add_argument("--buckets", default="1000000")
    p.add_argument("--out", default=None)
    return p


def main(args: argparse.Namespace) -> list[dict]:
    from svp_hf.data import TextClassificationTask, load_pool
    from svp_hf.proxies import build_proxy

    train, test = load_pool(args.data, "train"), load_pool(args.data, "test")
    task = TextClassificationTask.from_dataset(train)
    y_test = task.encode_labels(test)
    sizes = [min(int(s), train.num_rows) for s in args.sizes.split(",")]
    rows = []

    def run(name, subset, seed, **kw):
        t0 = time.perf_counter()
        proxy = build_proxy(name, seed=seed, **kw).fit(subset, task)
        fit_s = time.perf_counter() - t0
        acc = float((proxy.predict_proba(test).argmax(1) == y_test).mean())
        rows.append(dict(proxy=name, n=subset.num_rows, seed=seed, **kw, acc=acc, fit_s=round(fit_s, 3)))
        print(json.dumps(rows[-1]), flush=True)

    for n, seed in itertools.product(sizes, [int(s) for s in args.seeds.split(",")]):
        subset = train.select(np.random.default_rng(seed).permutation(train.num_rows)[:n])
        run("tfidf", subset, seed)
        for lr, ep, bucket in itertools.product(
            [float(x) for x in args.lrs.split(",")],
            [int(x) for x in args.epochs.split(",")],
            [int(x) for x in args.buckets.split(",")],
        ):
            run("fasttext", subset, seed, lr=lr, epochs=ep, bucket=bucket)
    if args.out:
        write_json_atomic(args.out, rows, indent=1)
    return rows


if __name__ == "__main__":
    main(make_parser().parse_args())
