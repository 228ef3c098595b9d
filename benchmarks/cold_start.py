"""Cold start: one big uncertainty batch after a small random start, or several smaller ones?

Runs simulated active learning on a pool (2% random start, then 10% and 20% of the pool) with each proxy and
strategy, once with one query per budget step (the paper's schedule) and once with queries of at most
``--batch-sizes`` rows, and reports the proxy's test accuracy at each budget (mean ± std over seeds) against
random selection. This is the measurement behind the ``--batch-size`` advice in the README.

    python -m benchmarks.cold_start --data ../shared/data/ag_news --out benchmarks/results/cold_start.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

from svp_hf.io import write_json_atomic


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ag_news")
    p.add_argument("--eval-split", default="test")
    p.add_argument("--proxies", default="fasttext,tfidf")
    p.add_argument("--strategies", default="least_confidence,margin")
    p.add_argument("--batch-sizes", default="none,300", help="'none' = one query per budget step")
    p.add_argument("--initial", default="0.02")
    p.add_argument("--budgets", default="0.1,0.2")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--out", default=None)
    return p


def main(args: argparse.Namespace) -> list[dict]:
    from svp_hf.active import ActiveLearner, ActiveLearningConfig
    from svp_hf.data import load_pool

    pool, test = load_pool(args.data, "train"), load_pool(args.data, args.eval_split)
    rows = []
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [("random", p, "none") for p in args.proxies.split(",")] + list(
        itertools.product(args.strategies.split(","), args.proxies.split(","), args.batch_sizes.split(","))
    )
    for (strategy, proxy, batch), seed in itertools.product(runs, seeds):
        config = ActiveLearningConfig(
            proxy=proxy,
            strategy=strategy,
            initial=args.initial,
            budgets=args.budgets.split(","),
            batch_size=None if batch == "none" else batch,
            seed=seed,
        )
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            learner = ActiveLearner(pool, Path(tmp) / "al", config, eval_dataset=test)
            state = learner.run()
            # a round records the accuracy of the proxy that chose it (trained on the rows labeled before it);
            # the proxy trained on the final labeled set is evaluated here
            accuracy_by_size = {r["labeled_before"]: r["proxy_eval_accuracy"] for r in state.records[1:]}
            accuracy_by_size[len(state.indices)] = learner.evaluate(learner.fit_proxy(state))
            elapsed = time.perf_counter() - t0
        targets = sorted({r["target"] for r in state.records})
        row = {
            "proxy": proxy,
            "strategy": strategy,
            "batch_size": batch,
            "seed": seed,
            "queries": len(state.records) - 1,
            "accuracy_at": {str(t): round(accuracy_by_size[t], 4) for t in targets if t in accuracy_by_size},
            "seconds": round(elapsed, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        write_json_atomic(args.out, rows, indent=1)
    return rows


if __name__ == "__main__":
    main(make_parser().parse_args())
