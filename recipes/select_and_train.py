"""Recipes (a) and (b): select with a cheap proxy, save (or push), train the target on the selection, report.

    # (a) the paper's text setup, fastText -> VDCNN-29, on AG News (local copy), two CPU processes:
    accelerate launch --config_file recipes/accelerate/cpu_2_processes.yaml recipes/select_and_train.py \\
        --config recipes/configs/ag_news_fasttext_vdcnn29_active.yaml
    accelerate launch --config_file recipes/accelerate/cpu_2_processes.yaml recipes/select_and_train.py \\
        --config recipes/configs/ag_news_fasttext_vdcnn29_coreset.yaml
    # the same on the Hub's Amazon Review Polarity (3.6M rows), on GPUs:
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/select_and_train.py \\
        --config recipes/configs/amazon_polarity_fasttext_vdcnn29_active.yaml
    # (b) a small transformer proxy -> a BERT target on SST-2:
    accelerate launch --config_file recipes/accelerate/cpu_2_processes.yaml recipes/select_and_train.py \\
        --config recipes/configs/sst2_transformer_bert_active.yaml

``--mode active``: active learning via proxy (a random initial set, then rounds up to ``--budgets``; the target trains
on the final labeled set). ``--mode coreset``: the proxy trains on every row, the best ``--keep`` rows are kept.
Every flag can also be set in the ``--config`` YAML; flags on the command line win. Writes OUT/selection (or
OUT/active), OUT/target and OUT/summary.json (target accuracy, selection time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import is_main, json_object, parse_args, report  # noqa: E402


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="../shared/data/ag_news", help="Hub id or local folder")
    g.add_argument("--split", default="train")
    g.add_argument("--eval-split", default="test")
    g.add_argument("--text-column", default="text")
    g.add_argument("--label-column", default="label")
    g = p.add_argument_group("selection")
    g.add_argument("--mode", choices=("active", "coreset"), default="active")
    g.add_argument("--proxy", default="fasttext")
    g.add_argument("--proxy-kwargs", type=json_object, default={}, metavar="JSON", help="proxy hyperparameters")
    g.add_argument("--strategy", default="least_confidence")
    g.add_argument("--initial", default="0.02", help="active: the random initial set")
    g.add_argument("--budgets", default="0.1,0.2,0.3,0.4,0.5", help="active: labeled-set sizes")
    g.add_argument("--batch-size", default="auto", help="active: most rows per query")
    g.add_argument("--keep", default="0.5", help="coreset: rows to keep")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the selection with its card")
    g = p.add_argument_group("target")
    g.add_argument("--model", default="vdcnn-29")
    g.add_argument("--max-length", type=int)
    g.add_argument("--training-args", type=json_object, default={}, metavar="JSON", help="TrainingArguments fields")
    p.add_argument("--output-dir", default="out/recipes/select_and_train")
    return p


def select(args, pool, eval_dataset, out: Path) -> tuple[Path, float]:
    """The selection step; returns the folder holding the selected rows and the selection's time in seconds."""
    import svp_hf

    if args.mode == "coreset":
        result = svp_hf.coreset(pool, keep=args.keep, proxy=args.proxy, strategy=args.strategy, seed=args.seed,
                                proxy_kwargs=args.proxy_kwargs, text_column=args.text_column,
                                label_column=args.label_column)  # fmt: skip
        result.source = {"dataset": str(args.dataset), "split": args.split}
        result.save_to_disk(out / "selection", overwrite=True)
        return out / "selection", result.timings["total"]
    config = svp_hf.ActiveLearningConfig(
        proxy=args.proxy, strategy=args.strategy, initial=args.initial, budgets=str(args.budgets),
        batch_size=args.batch_size, seed=args.seed, proxy_kwargs=args.proxy_kwargs, text_column=args.text_column,
        label_column=args.label_column,
    )  # fmt: skip
    learner = svp_hf.ActiveLearner(pool, out / "active", config, eval_dataset=eval_dataset,
                                   source={"dataset": str(args.dataset), "split": args.split})  # fmt: skip
    state = learner.run()  # resumes if OUT/active holds earlier rounds
    seconds = sum(sum(r["timings_s"].values()) for r in state.records)
    return out / "active", seconds


def main(args: argparse.Namespace) -> dict:
    import svp_hf
    from svp_hf.distributed import current, shutdown
    from svp_hf.hub import load_publishable, push_to_hub
    from svp_hf.training import train_target

    out = Path(args.output_dir)
    current()  # several processes: the selection is sharded across them
    pool = svp_hf.load_pool(args.dataset, args.split)
    eval_dataset = svp_hf.load_pool(args.dataset, args.eval_split)
    selection_dir, selection_seconds = select(args, pool, eval_dataset, out)
    if args.push_to_hub:
        push_to_hub(selection_dir, args.push_to_hub)
    rows, record, _ = load_publishable(selection_dir)
    rows = rows.remove_columns([c for c in ("svp_score", "svp_rank", "svp_round") if c in rows.column_names])
    t0 = time.perf_counter()
    metrics = train_target(rows, args.model, out / "target", eval_dataset=eval_dataset, text_column=args.text_column,
                           label_column=args.label_column, training_args=dict(args.training_args),
                           max_length=args.max_length, selection_config=record, overwrite=True)  # fmt: skip
    summary = {
        "mode": args.mode,
        "proxy": args.proxy,
        "strategy": args.strategy,
        "target": args.model,
        "pool_rows": pool.num_rows,
        "selected_rows": rows.num_rows,
        "selection_seconds": round(selection_seconds, 3),
        "target_train_seconds": round(time.perf_counter() - t0, 3),
        "target_eval_accuracy": metrics.get("eval_accuracy"),
        "processes": metrics.get("world_size"),
        "selection": str(selection_dir),
        "target_dir": str(out / "target"),
    }
    if is_main() and record.get("proxy_eval_accuracy") is not None:
        summary["proxy_eval_accuracy"] = record["proxy_eval_accuracy"]
    report(out / "summary.json", summary)
    shutdown()
    return summary


if __name__ == "__main__":
    main(parse_args(make_parser()))
