"""A plain `transformers.Trainer` run of a tiny BERT (built from a config) on real AG News rows, with svp-hf's
callbacks dropped in. Used in-process by tests/test_callbacks.py and, with `python -m torch.distributed.run`, as
a two-process run: ``python tiny_trainer.py AG_NEWS_DIR OUT_DIR``."""

import sys

import numpy as np


def data(ag_news_path, rows: int = 240):
    import svp_hf

    pool = svp_hf.load_pool(ag_news_path, "train[:2000]")
    picked = np.random.default_rng(0).choice(pool.num_rows, size=rows, replace=False)  # ids unlike positions
    return pool.select(picked).add_column("svp_pool_index", picked.tolist())


def run(ag_news_path, out_dir, callbacks_for, epochs: int = 3):
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig, Trainer, TrainingArguments

    from svp_hf.training import train_wordpiece

    rows = data(ag_news_path)
    tokenizer = train_wordpiece(rows[:]["text"], vocab_size=1500, max_length=32)
    enc = rows.map(lambda b: tokenizer(b["text"], truncation=True, padding="max_length", max_length=32),
                   batched=True, remove_columns=["text"]).rename_column("label", "labels")  # fmt: skip
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=4, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    args = TrainingArguments(output_dir=str(out_dir), num_train_epochs=epochs, per_device_train_batch_size=16,
                             learning_rate=1e-3, save_strategy="no", report_to="none", use_cpu=True, seed=0,
                             disable_tqdm=True)  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=enc, processing_class=tokenizer,
                      callbacks=callbacks_for(enc))  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only pays for thread handoffs (3x slower with 2 threads here)
    try:
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    return trainer, enc


def predict_all(model, enc):
    """The trained model's predicted class for every row, computed independently of the callback."""
    import torch

    model.eval()
    with torch.no_grad():
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc.column_names]
        batch = {k: torch.tensor(enc[:][k]) for k in names}
        return model(**batch).logits.argmax(-1).numpy()


if __name__ == "__main__":
    import json

    from svp_hf.callbacks import ForgettingEventsCallback
    from svp_hf.distributed import shutdown

    trainer, enc = run(sys.argv[1], sys.argv[2], lambda ds: [ForgettingEventsCallback(ds)])
    if trainer.is_world_process_zero():
        check = {"final_predictions": predict_all(trainer.model, enc).tolist(), "index": enc[:]["svp_pool_index"],
                 "world_size": trainer.args.world_size}  # fmt: skip
        with open(f"{sys.argv[2]}/check.json", "w") as f:
            json.dump(check, f)
    shutdown()
