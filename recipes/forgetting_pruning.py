"""Recipe (c): pruning with forgetting events recorded by a callback in a plain `transformers.Trainer` script.

    # two CPU processes (see recipes/README.md), or any accelerate config: --config_file recipes/accelerate/...
    accelerate launch --multi_gpu --num_processes 2 recipes/forgetting_pruning.py \\
        --config recipes/configs/forgetting_pruning.yaml
    python recipes/forgetting_pruning.py --config recipes/configs/forgetting_pruning.yaml     # one process

1. Train a model with your usual Trainer code plus ``ForgettingEventsCallback``: every epoch records each training
   row's prediction (rows identified by ``svp_pool_index``), saved in ``OUT/full/forgetting_events.npz``.
2. Prune: ``svp_hf.coreset(..., proxy="precomputed", strategy="forgetting_events")`` keeps the rows forgotten most
   often (never-learned first), like ``svp-hf coreset --proxy precomputed --proxy-kwargs '{"path": "OUT/full"}'``.
3. Train the same model from scratch on the kept rows, with ``SelectionProvenanceCallback`` recording the selection
   in the model card. The summary compares both runs' accuracy and reports the selection time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import parse_args, report  # noqa: E402


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="../shared/data/ag_news")
    p.add_argument("--train-split", default="train[:4000]")
    p.add_argument("--eval-split", default="test[:1000]")
    p.add_argument("--keep", default="0.5", help="fraction or count of training rows to keep")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", default="out/recipes/forgetting_pruning")
    return p


def build_model(args, tokenizer, task):
    from transformers import AutoModelForSequenceClassification, BertConfig

    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 64), intermediate_size=4 * args.hidden,
        num_labels=task.num_labels, pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(task.label_names)), label2id={n: i for i, n in enumerate(task.label_names)},
    )  # fmt: skip
    return AutoModelForSequenceClassification.from_config(config)


def train(args, rows, eval_rows, tokenizer, task, out: Path, callbacks):
    """Your existing training code: a plain Trainer. The only svp-hf parts are the callbacks passed in."""
    import numpy as np
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    set_seed(args.seed)

    def encode(ds):
        enc = ds.map(lambda b: tokenizer(b["text"], truncation=True, padding="max_length", max_length=args.max_length),
                     batched=True, remove_columns=["text"])  # fmt: skip
        return enc.rename_column("label", "labels")

    train_enc, eval_enc = encode(rows), encode(eval_rows)
    training_args = TrainingArguments(
        output_dir=str(out), num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=256, learning_rate=args.learning_rate, seed=args.seed, save_strategy="no",
        report_to="none", disable_tqdm=True,
        logging_strategy="epoch", use_cpu=not torch.cuda.is_available(), remove_unused_columns=True,
    )  # fmt: skip
    trainer = Trainer(
        model=build_model(args, tokenizer, task), args=training_args, train_dataset=train_enc,
        eval_dataset=eval_enc, processing_class=tokenizer,
        compute_metrics=lambda p: {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())},
        callbacks=[cb(train_enc) if callable(cb) and not hasattr(cb, "on_train_end") else cb for cb in callbacks],
    )  # fmt: skip
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(str(out))
    return metrics


def main(args: argparse.Namespace) -> dict:
    import svp_hf
    from svp_hf.callbacks import ForgettingEventsCallback, SelectionProvenanceCallback
    from svp_hf.distributed import current, shutdown
    from svp_hf.training import train_wordpiece

    out = Path(args.output_dir)
    pool = svp_hf.load_pool(args.dataset, args.train_split)
    pool = pool.add_column("svp_pool_index", list(range(pool.num_rows)))  # the stable row id the callback needs
    eval_rows = svp_hf.load_pool(args.dataset, args.eval_split)
    task = svp_hf.TextClassificationTask.from_dataset(pool)
    tokenizer = train_wordpiece(pool[:]["text"], vocab_size=4000, max_length=args.max_length)

    full = train(args, pool, eval_rows, tokenizer, task, out / "full",
                 [lambda ds: ForgettingEventsCallback(ds, index_column="svp_pool_index")])  # fmt: skip
    current()  # the Trainer's process group, if any, is reused for the selection
    t0 = time.perf_counter()
    kept = svp_hf.coreset(pool, keep=args.keep, proxy="precomputed", strategy="forgetting_events", seed=args.seed,
                          proxy_kwargs={"path": str(out / "full")})  # fmt: skip
    selection_seconds = time.perf_counter() - t0
    kept.source = {"dataset": args.dataset, "split": args.train_split}
    kept.save_to_disk(out / "kept", overwrite=True)
    rows = kept.dataset.remove_columns(["svp_score", "svp_rank"])
    pruned = train(args, rows, eval_rows, tokenizer, task, out / "pruned",
                   [SelectionProvenanceCallback(out / "kept")])  # fmt: skip
    summary = {
        "recipe": "forgetting_pruning",
        "train_rows": pool.num_rows,
        "kept_rows": len(kept),
        "full_accuracy": round(full["eval_accuracy"], 4),
        "pruned_accuracy": round(pruned["eval_accuracy"], 4),
        "selection_seconds": round(selection_seconds, 3),
        "forgetting_events_file": str(out / "full" / "forgetting_events.npz"),
    }
    report(out / "summary.json", summary)
    shutdown()
    return summary


if __name__ == "__main__":
    main(parse_args(make_parser()))
