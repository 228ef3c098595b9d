"""Selection via Proxy on images: a small timm ResNet selecting for a larger one, against the larger one selecting for
itself and against random selection, on a CIFAR-10 subset.

One active-learning query, as in the paper's image experiments: a random initial labeled set, then each selector
(the proxy, and the target architecture used as its own selector) is trained from scratch on it for the same number of
epochs, scores the unlabeled rows (eval transforms) and picks the next rows by ``--strategy``. Selection time is fit +
score + rank, timed by `svp_hf.select`; the speed-up is target-as-selector time / proxy time, measured in the same
run. Then the target is trained from scratch with `svp-hf train`'s code path (`transformers.Trainer`) on each labeled
set and evaluated on held-out test rows.

    python -m benchmarks.image_selection --data ../shared/data/cifar10 --threads 1 \\
        --out benchmarks/results/image_selection.json
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from svp_hf.io import write_json_atomic


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/cifar10")
    p.add_argument("--pool-split", default="train[:2000]")
    p.add_argument("--eval-split", default="test[:1000]")
    p.add_argument("--proxy-model", default="resnet18", help="timm architecture of the proxy")
    p.add_argument("--target-model", default="resnet50", help="timm architecture of the target")
    p.add_argument("--strategy", default="entropy")
    p.add_argument("--initial", default="0.1", help="random initial labeled set")
    p.add_argument("--budget", default="0.1", help="rows each selector adds (fraction of the pool or count)")
    p.add_argument("--selector-epochs", type=int, default=5, help="epochs each selector trains (proxy and target)")
    p.add_argument(
        "--target-epochs", type=int, default=10, help="epochs of the final target training (0: time selection only)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--out", default=None)
    return p


def main(args: argparse.Namespace) -> dict:
    import torch

    from svp_hf import SelectionConfig, select
    from svp_hf.data import load_pool, resolve_budget
    from svp_hf.training import train_target

    if args.threads:
        torch.set_num_threads(args.threads)
    pool, test = load_pool(args.data, args.pool_split), load_pool(args.data, args.eval_split)
    n0 = resolve_budget(args.initial, pool.num_rows)
    initial = np.random.default_rng(args.seed).permutation(pool.num_rows)[:n0]
    query = resolve_budget(args.budget, pool.num_rows)
    epochs = {"epochs": args.selector_epochs}

    selections, timings = {}, {}
    for name, arch in (("proxy", args.proxy_model), ("target_as_selector", args.target_model)):
        config = SelectionConfig(
            proxy="timm", strategy=args.strategy, budget=query, seed=args.seed, image_column="image",
            proxy_kwargs={"model_name": arch, **epochs},
        )  # fmt: skip
        result = select(pool, config, labeled_indices=initial)
        selections[name], timings[name] = result.indices, result.timings
        print(f"{name} ({arch}): selected {len(result.indices)} rows in {result.timings['total']:.1f}s", flush=True)
    rng = np.random.default_rng(args.seed + 1)
    unlabeled = np.setdiff1d(np.arange(pool.num_rows), initial)
    selections["random"] = rng.permutation(unlabeled)[:query]

    accuracy, train_seconds = {}, {}
    overlap = len(np.intersect1d(selections["proxy"], selections["target_as_selector"])) / query
    for name, chosen in selections.items() if args.target_epochs else ():
        labeled = pool.select(np.concatenate([initial, chosen]))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            metrics = train_target(
                labeled, f"timm/{args.target_model}", Path(tmp) / "target", eval_dataset=test, image_column="image",
                training_args={
                    "num_train_epochs": args.target_epochs, "seed": args.seed, "disable_tqdm": True,
                    "eval_strategy": "no", "save_strategy": "no",  # one evaluation at the end, no checkpoints
                },
            )  # fmt: skip
            train_seconds[name] = round(time.perf_counter() - t0, 1)
        accuracy[name] = round(float(metrics["eval_accuracy"]), 4)
        print(f"target {args.target_model} on initial + {name}: accuracy {accuracy[name]:.4f}", flush=True)

    proxy_s, target_s = timings["proxy"]["total"], timings["target_as_selector"]["total"]
    report = {
        "command": "python -m benchmarks.image_selection " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                                                       vars(args).items() if v is not None),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "note": "a CPU shared with other jobs: absolute times vary between runs, the ratio is measured in one run",
        },
        "pool_rows": pool.num_rows,
        "eval_rows": test.num_rows,
        "initial_rows": n0,
        "selected_rows": query,
        "proxy_model": args.proxy_model,
        "target_model": args.target_model,
        "strategy": args.strategy,
        "selector_epochs": args.selector_epochs,
        "target_epochs": args.target_epochs,
        "selection_seconds": {"proxy": timings["proxy"], "target_as_selector": timings["target_as_selector"]},
        "selection_speedup": round(target_s / proxy_s, 2),
        "selected_overlap": round(overlap, 4),
        "target_accuracy": accuracy,
        "target_train_seconds": train_seconds,
    }  # fmt: skip
    print(f"selection speed-up {report['selection_speedup']}x (target {target_s:.1f}s / proxy {proxy_s:.1f}s)")
    if args.out:
        write_json_atomic(Path(args.out), report)
    return report


if __name__ == "__main__":
    main(make_parser().parse_args())
