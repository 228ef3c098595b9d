"""`transformers.TrainerCallback`s for training code that already exists: drop one into your own `Trainer`.

- `ForgettingEventsCallback` records, after every epoch, each training row's predicted class (rows identified by a
  stable index column) and saves them with the run as ``forgetting_events.npz``; the next run prunes with them:
  ``svp-hf coreset --proxy precomputed --proxy-kwargs '{"path": "RUN_DIR"}' --strategy forgetting_events``.
- `SelectionProvenanceCallback` writes the selection that produced the training rows (``selection_config.json``)
  into the run's output folder and a "Training data selection" section (plus ``svp-hf`` / ``strategy:`` / ``proxy:``
  tags and the Hub dataset link) into its model card.

Both work under several processes (``torchrun`` / ``accelerate launch``): predictions are computed on contiguous
shards and gathered in row order; only the main process writes.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from .errors import ColumnNotFoundError, ConfigError
from .io import atomic_file, write_json_atomic
from .proxies.precomputed import FILE_NAME

logger = logging.getLogger(__name__)

SECTION_START, SECTION_END = "<!-- svp-hf selection -->", "<!-- /svp-hf selection -->"


class ForgettingEventsCallback(TrainerCallback):
    """Record per-example forgetting events (Toneva et al. 2019) on the training set while a `Trainer` trains.

    After every epoch the model (in eval mode, without gradients) predicts every row of ``train_dataset``; a
    forgetting event is a row that was classified correctly after one epoch and wrongly after the next, and rows never
    classified correctly count as infinitely forgettable (`svp_hf.strategies.forgetting_counts`). The record is
    written, after every epoch, to ``OUTPUT_DIR/forgetting_events.npz``: ``index`` (the rows' stable ids), ``labels``,
    ``predictions`` (int16 ``[epochs, rows]``), ``probs`` (the last epoch's class probabilities) and ``counts``.

    Args:
        train_dataset (`datasets.Dataset`): the encoded training rows (model inputs and labels), with the index column.
            Pass the same dataset you give the `Trainer`: the callback predicts on it itself, since the Trainer's
            loader drops columns the model does not take and shuffles.
        index_column (`str`, defaults to `"svp_pool_index"`): a column that identifies each row across runs (for a
            plain dataset: ``ds.add_column("idx", range(len(ds)))``).
        label_column (`str`, defaults to `"labels"`): the label ids.
        batch_size (`int`, defaults to `64`): rows per forward pass.
        data_collator (callable, *optional*): batches the model inputs; by default `transformers.default_data_collator`
            (inputs padded to one length) or padding with the Trainer's tokenizer.
    """

    def __init__(self, train_dataset, index_column: str = "svp_pool_index", label_column: str = "labels",
                 batch_size: int = 64, data_collator=None):  # fmt: skip
        for column, flag in ((index_column, "index_column"), (label_column, "label_column")):
            if column not in train_dataset.column_names:
                hint = " (add one: ds.add_column('idx', range(len(ds))))" if flag == "index_column" else ""
                raise ColumnNotFoundError(
                    f"{flag} {column!r} is not in the training dataset (columns: {train_dataset.column_names}){hint}"
                )
        self.dataset = train_dataset
        self.index_column, self.label_column = index_column, label_column
        self.batch_size, self.data_collator = batch_size, data_collator
        self.index = np.asarray(train_dataset[:][index_column], dtype=np.int64)
        if np.unique(self.index).size != self.index.size:
            raise ConfigError(f"index column {index_column!r} repeats values; it must identify each row")
        self.labels = np.asarray(train_dataset[:][label_column], dtype=np.int64)
        self.predictions: list[np.ndarray] = []
        self.probs: np.ndarray | None = None

    def on_epoch_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        from .strategies import forgetting_counts

        preds, probs = self._predict(model, processing_class)
        self.predictions.append(preds.astype(np.int16))
        self.probs = probs
        if state.is_world_process_zero:
            self.counts = forgetting_counts(np.stack(self.predictions), self.labels)
            path = Path(args.output_dir) / FILE_NAME
            with atomic_file(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, index=self.index, labels=self.labels, predictions=np.stack(self.predictions),
                         probs=self.probs, counts=self.counts)  # fmt: skip
            logger.info(
                "epoch %d: forgetting events recorded for %d rows -> %s", len(self.predictions), len(preds), path
            )

    def _predict(self, model, processing_class) -> tuple[np.ndarray, np.ndarray]:
        """Predicted class and probabilities of every row; each process predicts a contiguous shard."""
        import torch

        from .distributed import current, shard_bounds

        dist = current()
        num_rows = self.dataset.num_rows
        start, stop = shard_bounds(num_rows, 1, 0) if dist is None else dist.shard(num_rows)
        accepted = set(inspect.signature(model.forward).parameters) - {"labels", "label"}
        inputs = [c for c in self.dataset.column_names if c in accepted]
        collate = self.data_collator or _collator(processing_class)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        preds, probs = [], []
        try:
            with torch.no_grad():
                for lo in range(start, stop, self.batch_size):
                    rows = self.dataset.select_columns(inputs)[lo : min(stop, lo + self.batch_size)]
                    batch = collate([dict(zip(rows, values)) for values in zip(*rows.values())])
                    batch = {k: v.to(device) for k, v in batch.items() if k in accepted}
                    logits = model(**batch).logits.float()
                    probs.append(torch.softmax(logits, dim=-1).cpu().numpy())
                    preds.append(logits.argmax(-1).cpu().numpy())
        finally:
            model.train(was_training)
        num_labels = int(getattr(model.config, "num_labels", 0) or (probs[0].shape[1] if probs else 0))
        local_probs = np.concatenate(probs) if probs else np.zeros((0, num_labels), np.float32)
        local_preds = np.concatenate(preds) if preds else np.zeros(0, np.int64)
        if dist is None:
            return local_preds, local_probs
        return dist.gather_rows(local_preds.astype(np.int64), num_rows), dist.gather_rows(local_probs, num_rows)


def _collator(processing_class):
    from transformers import DataCollatorWithPadding, default_data_collator

    if processing_class is not None and hasattr(processing_class, "pad"):
        return DataCollatorWithPadding(processing_class)
    return default_data_collator


class SelectionProvenanceCallback(TrainerCallback):
    """Record which selection produced the training rows, with the run.

    At the end of training (main process only) writes ``selection_config.json`` into ``args.output_dir`` and adds a
    "Training data selection" section, the tags ``svp-hf``, ``strategy:<name>``, ``proxy:<name>`` and (with
    ``dataset_repo_id``) a ``datasets:`` link to the model card ``README.md`` there, creating a minimal card if
    there is none. If you later recreate the card (``trainer.create_model_card()``, ``trainer.push_to_hub()``), call
    `add_selection_to_model_card` on the folder again.

    Args:
        selection: a selection folder (``svp-hf select`` / ``coreset`` output), its ``selection_config.json`` as a
            dict, or a `SelectionResult`.
        dataset_repo_id (`str`, *optional*): where the selection was pushed (``svp-hf push DIR REPO_ID``).
    """

    def __init__(self, selection, dataset_repo_id: str | None = None):
        self.selection = _selection_record(selection)
        self.dataset_repo_id = dataset_repo_id

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            add_selection_to_model_card(args.output_dir, self.selection, self.dataset_repo_id)


def _selection_record(selection) -> dict[str, Any]:
    if isinstance(selection, dict):
        return selection
    if isinstance(selection, (str, Path)):
        path = Path(selection)
        path = path / "selection_config.json" if path.is_dir() else path
        if not path.is_file():
            raise ConfigError(f"{path} does not exist: pass a folder written by svp-hf select / coreset")
        return json.loads(path.read_text())
    return selection.selection_config()  # a SelectionResult


def selection_section(selection: dict[str, Any], dataset_repo_id: str | None = None) -> str:
    """Markdown describing the selection behind a model's training data (for model cards)."""
    cfg = selection.get("config", {})
    src = selection.get("source", {})
    where = f"[`{dataset_repo_id}`](https://huggingface.co/datasets/{dataset_repo_id})" if dataset_repo_id else None
    lines = [SECTION_START, "## Training data selection", ""]
    text = f"Trained on {selection.get('num_selected')} of {selection.get('pool_size')} rows"
    if src.get("dataset"):
        text += f" of `{src['dataset']}`" + (f" (split `{src['split']}`)" if src.get("split") else "")
    text += f", chosen by the **{cfg.get('strategy')}** strategy"
    if selection.get("proxy_used"):
        text += f" with a **{cfg.get('proxy')}** proxy"
    text += " ([Selection via Proxy](https://arxiv.org/abs/1906.11829), svp-hf)."
    if where:
        text += f" The selected rows: {where}."
    lines += [text, "", "`selection_config.json` beside this card records every setting."]
    if selection.get("command"):
        lines += ["", "```bash", selection["command"], "```"]
    return "\n".join([*lines, SECTION_END])


def add_selection_to_model_card(folder, selection, dataset_repo_id: str | None = None) -> Path:
    """Write ``selection_config.json`` and the selection section / tags into ``folder/README.md`` (idempotent)."""
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    record = _selection_record(selection)
    write_json_atomic(folder / "selection_config.json", record)
    readme = folder / "README.md"
    card = ModelCard(readme.read_text() if readme.is_file() else "---\nlibrary_name: transformers\n---\n")
    if card.data is None:
        card.data = ModelCardData()
    cfg = record.get("config", {})
    tags = list(card.data.tags or [])
    wanted = ["svp-hf", f"strategy:{cfg.get('strategy')}"] + (
        [f"proxy:{cfg['proxy']}"] if record.get("proxy_used") else []
    )
    card.data.tags = tags + [t for t in wanted if t not in tags]
    if dataset_repo_id:
        datasets = list(card.data.datasets or [])
        card.data.datasets = datasets + ([dataset_repo_id] if dataset_repo_id not in datasets else [])
    body = card.text
    if SECTION_START in body and SECTION_END in body:  # replace the previous section
        head, rest = body.split(SECTION_START, 1)
        body = head + rest.split(SECTION_END, 1)[1].lstrip("\n")
    card.text = (
        body.rstrip("\n") + ("\n\n" if body.strip() else "") + selection_section(record, dataset_repo_id) + "\n"
    )
    with atomic_file(readme) as tmp:
        tmp.write_text(str(card))
    return readme
