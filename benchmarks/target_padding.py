"""Target training time with every row padded to ``max_length`` against batches padded to their longest row.

    python -m benchmarks.target_padding --out benchmarks/results/target_padding.json

For each dataset, ``svp_hf.train_target`` trains the same bert-tiny target (same seed, rows, recipe) twice: with
``pad_to_max_length=True`` (what svp-hf did before) and with the default per-batch padding, and evaluates both on the
same rows. Reports wall seconds for training + evaluation, the speed-up, and both accuracies (attention masks make
padding irrelevant to the model; dropout draws different masks for different batch shapes, so the two trainings
agree only up to that noise).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from svp_hf.io import write_json_atomic


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data", help="the folder holding sst2/, ag_news/, imdb/")
    p.add_argument("--datasets", default="sst2,ag_news,imdb")
    p.add_argument("--rows", type=int, default=4000, help="training rows (a seeded random subset)")
    p.add_argument("--eval-rows", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--out", default=None)
    return p


def measure(train, evaluation, pad: bool, args, workdir: Path) -> dict:
    from svp_hf.training import train_target

    t0 = time.perf_counter()
    metrics = train_target(
        train, "bert-tiny", workdir / f"pad-{pad}", eval_dataset=evaluation, max_length=args.max_length,
        pad_to_max_length=pad, overwrite=True,
        training_args={"num_train_epochs": args.epochs, "learning_rate": 1e-3, "per_device_train_batch_size": 32,
                       "seed": 0, "save_strategy": "no", "eval_strategy": "no", "logging_strategy": "no",
                       "log_level": "error", "disable_tqdm": True},
    )  # fmt: skip
    return {"seconds": time.perf_counter() - t0, "accuracy": float(metrics["eval_accuracy"])}


def main(argv=None) -> list[dict]:
    args = make_parser().parse_args(argv)
    logging.disable(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import numpy as np

    from svp_hf.data import load_pool

    from .svp_speedup import load_eval_split

    datasets.disable_progress_bars()
    rows = []
    for name in args.datasets.split(","):
        folder = Path(args.data) / name
        train = load_pool(folder, "train").shuffle(seed=0).select(range(args.rows)).flatten_indices()
        evaluation, _ = load_eval_split(str(folder))
        evaluation = evaluation.shuffle(seed=0).select(range(min(args.eval_rows, evaluation.num_rows)))
        words = np.mean([len(t.split()) for t in train["text"]])
        with tempfile.TemporaryDirectory(prefix="svp-padding-") as tmp:
            measure(train.select(range(64)), evaluation.select(range(64)), True, args, Path(tmp))  # warm-up
            padded = measure(train, evaluation, True, args, Path(tmp))
            dynamic = measure(train, evaluation, False, args, Path(tmp))
        row = {
            "dataset": name, "rows": args.rows, "mean_words": float(words), "max_length": args.max_length,
            "epochs": args.epochs, "padded_s": padded["seconds"], "per_batch_s": dynamic["seconds"],
            "speedup": padded["seconds"] / dynamic["seconds"],
            "padded_accuracy": padded["accuracy"], "per_batch_accuracy": dynamic["accuracy"],
        }  # fmt: skip
        rows.append(row)
        print(f"{name:8s} {words:6.1f} words/row: padded {padded['seconds']:6.1f}s, "
              f"per batch {dynamic['seconds']:6.1f}s ({row['speedup']:.2f}x); "
              f"accuracy {padded['accuracy']:.4f} / {dynamic['accuracy']:.4f}")  # fmt: skip
    if args.out:
        write_json_atomic(args.out, rows)
    return rows


if __name__ == "__main__":
    main()
