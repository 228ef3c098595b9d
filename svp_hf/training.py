"""Training the target on selected rows: `transformers.Trainer` (Accelerate underneath) for VDCNN, BERT-shaped models
built from a config, timm image networks (``timm/<architecture>``, saved as transformers' `TimmWrapper` models), or any
local pretrained sequence- or image-classification model.

The run trains in ``OUTPUT_DIR.partial/`` (Trainer checkpoints, and ``svp_hf_run.json``: what identifies the run) and
writes the final model, tokenizer, metrics and model card to ``OUTPUT_DIR`` atomically at the end. A rerun resumes
from the last checkpoint only when its record matches: a checkpoint of another run (other rows, model or settings) is
refused, or discarded with ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import ClassificationTask, TextClassificationTask, check_input_column, iter_text_batches, task_from_dataset
from .errors import CheckpointMismatchError, ConfigError, EmptyPoolError, LabelError
from .io import _umask, atomic_directory, check_output_path, write_json_atomic

logger = logging.getLogger(__name__)

VDCNN_MODELS = {"vdcnn-9": 9, "vdcnn-17": 17, "vdcnn-29": 29, "vdcnn-49": 49}
# BERT shapes (layers, hidden, heads, intermediate), named like Turc et al.'s miniature BERTs
BERT_SHAPES = {
    "bert-tiny": (2, 128, 2, 512),
    "bert-mini": (4, 256, 4, 1024),
    "bert-small": (4, 512, 8, 2048),
    "bert-medium": (8, 512, 8, 2048),
    "bert-base": (12, 768, 12, 3072),
}
VDCNN_DEFAULTS = {
    "learning_rate": 0.01,
    "per_device_train_batch_size": 128,
    "per_device_eval_batch_size": 256,
    "num_train_epochs": 15,
    "weight_decay": 1e-4,
}
BERT_DEFAULTS = {
    "learning_rate": 5e-5,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 128,
    "num_train_epochs": 3,
    "weight_decay": 0.01,
    "warmup_steps": 0.1,  # a float below 1 is a fraction of the training steps
}
# A BERT built from a config starts from random weights: fine-tuning rates are far too small for it.
BERT_FROM_CONFIG_DEFAULTS = {**BERT_DEFAULTS, "learning_rate": 5e-4, "num_train_epochs": 10}
# Fine-tuning a pretrained text encoder on the few hundred to few thousand rows an active-learning budget buys
# (measured with all-MiniLM-L6-v2 on random AG News subsets, 64 tokens, batch 32, 1,000 test rows; issue 15): the
# number of optimizer steps is what small sets lack. BERT_DEFAULTS (3 epochs at 5e-5) gave 36.5% on 100 rows (12
# steps) and 81.3% on 400 (39 steps); lr 1e-4 with 20 epochs gave 85.1% on 100 rows (80 steps), with 5-10 epochs
# 87.3-87.5% on 400 (65-130 steps), 8 epochs 87.4%; 3e-5 needed 10 epochs on 400 rows (87.6%; 5 epochs: 85.0%). On
# 1,600 rows every rate from 3e-5 to 2e-4 gave 89.2-90.2% with 3-5 epochs (150-250 steps). So: at least
# PRETRAINED_MIN_STEPS steps (epochs = ceil(min steps / steps per epoch), 3 to 20), lr 1e-4 for encoders the size of
# MiniLM (measured) and 3e-5 from PRETRAINED_LARGE_PARAMS parameters on (BERT-base's usual range; not measured here),
# warm-up over the first 10% of steps, weight decay 0.01, batch 32; at most 256 tokens (MiniLM's own training length;
# batches are padded to their longest row, so short texts do not pay for it). With many classes those steps leave the
# new output layer untrained (Banking77, 77 classes: 29% on 400 rows): `svp_hf.head_init` then starts it from a linear
# probe (train_target's head_init "auto", measured there).
PRETRAINED_TEXT_DEFAULTS = {**BERT_DEFAULTS, "learning_rate": 1e-4}
PRETRAINED_LARGE_LEARNING_RATE = 3e-5
PRETRAINED_LARGE_PARAMS = 60_000_000
PRETRAINED_MIN_STEPS = 100
PRETRAINED_EPOCHS = (3, 20)
PRETRAINED_MAX_LENGTH = 256
# short names of pretrained checkpoints that ship with an extra (no Hub access needed)
PRETRAINED_ALIASES = {"minilm": "all-MiniLM-L6-v2"}


@dataclass
class TargetModel:
    model: Any
    tokenizer: Any
    kind: str  # "vdcnn" | "bert-config" | "pretrained" | "timm" | "pretrained-image"
    defaults: dict[str, Any]
    notes: list[str]
    max_length: int
    normalisation: tuple[list[float], list[float]] | None = None  # images: per-channel (mean, std)
    image_size: int | None = None  # images: shorter side resized to this, then centre-cropped; None = as stored


def build_target(name_or_path: str, task: TextClassificationTask, train_dataset, max_length: int | None = None):
    """The model and tokenizer for ``--model``: ``vdcnn-9|17|29|49``, ``bert-tiny|mini|small|medium|base`` (built
    from a config, with a WordPiece tokenizer trained on ``train_dataset``'s texts, streamed in Arrow batches, as no
    pretrained one exists), ``minilm`` (the real all-MiniLM-L6-v2 weights of the ``svp-hf[minilm]`` extra, offline),
    or a local path / Hub id of a pretrained sequence-classification model (never with remote code)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    id2label = dict(enumerate(task.label_names))
    label2id = {v: k for k, v in id2label.items()}
    if name_or_path in VDCNN_MODELS:
        from .models import VDCNNConfig, VDCNNForSequenceClassification, VDCNNTokenizer

        length = max_length or 1014
        config = VDCNNConfig(
            depth=VDCNN_MODELS[name_or_path], num_labels=task.num_labels, id2label=id2label, label2id=label2id,
            max_chars=length,
        )  # fmt: skip
        model = VDCNNForSequenceClassification(config)
        return TargetModel(model, VDCNNTokenizer(model_max_length=length), "vdcnn", VDCNN_DEFAULTS, [], length)
    if name_or_path in BERT_SHAPES:
        layers, hidden, heads, intermediate = BERT_SHAPES[name_or_path]
        length = max_length or 128
        batches = (b.to_pylist() for b in iter_text_batches(train_dataset, task.text_column))
        tokenizer = train_wordpiece(batches, vocab_size=8000, max_length=length)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=intermediate, max_position_embeddings=max(512, length), num_labels=task.num_labels,
            id2label=id2label, label2id=label2id, pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
        model = AutoModelForSequenceClassification.from_config(config)
        note = (
            f"{name_or_path} was built from a config with random weights (no pretrained weights are available "
            f"offline) and a WordPiece tokenizer ({tokenizer.vocab_size} tokens) trained on the training texts"
        )
        logger.warning(note)
        return TargetModel(model, tokenizer, "bert-config", BERT_FROM_CONFIG_DEFAULTS, [note], length)
    names = ", ".join([*VDCNN_MODELS, *BERT_SHAPES, *PRETRAINED_ALIASES])
    expected = f"a built-in name ({names}) nor a loadable pretrained model"
    notes = []
    if name_or_path in PRETRAINED_ALIASES:
        from .proxies.transformer import minilm_path

        path = minilm_path()  # the real weights, from the svp-hf[minilm] extra
        notes.append(f"fine-tuned from the pretrained {PRETRAINED_ALIASES[name_or_path]} weights ({path})")
        name_or_path = path
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)  # never with remote code
    except (OSError, ValueError) as err:
        raise _not_loadable(name_or_path, expected, err) from err
    model = _from_pretrained(AutoModelForSequenceClassification, name_or_path, task, expected)
    length = max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, PRETRAINED_MAX_LENGTH)
    defaults = dict(PRETRAINED_TEXT_DEFAULTS)
    if model.num_parameters() >= PRETRAINED_LARGE_PARAMS:
        defaults["learning_rate"] = PRETRAINED_LARGE_LEARNING_RATE
    return TargetModel(model, tokenizer, "pretrained", defaults, notes, length)


def pretrained_epochs(
    num_rows: int, batch_size: int, world_size: int = 1, accumulation: int = 1, min_steps: int | None = None
) -> int:
    """Epochs of the pretrained-encoder recipe: enough for at least ``min_steps`` (PRETRAINED_MIN_STEPS) optimizer
    steps on ``num_rows`` rows, between PRETRAINED_EPOCHS[0] and [1] (100 rows: 20 epochs, 400: 8, 1,600: 3 at batch
    32)."""
    steps_per_epoch = math.ceil(math.ceil(num_rows / (batch_size * max(1, world_size))) / max(1, accumulation))
    low, high = PRETRAINED_EPOCHS
    floor = PRETRAINED_MIN_STEPS if min_steps is None else min_steps
    return min(high, max(low, math.ceil(floor / max(1, steps_per_epoch))))


def _from_pretrained(auto_class, name_or_path: str, task: ClassificationTask, expected: str):
    """A pretrained classifier with ``task``'s labels (a new head where the sizes differ); a model that does not load
    is a `ConfigError` saying what ``--model`` may be (``expected``)."""
    id2label = dict(enumerate(task.label_names))
    try:
        return auto_class.from_pretrained(
            name_or_path, num_labels=task.num_labels, id2label=id2label, label2id={v: k for k, v in id2label.items()},
            ignore_mismatched_sizes=True,
        )  # fmt: skip
    except (OSError, ValueError) as err:
        raise _not_loadable(name_or_path, expected, err) from err


def _not_loadable(name_or_path: str, expected: str, err: Exception) -> ConfigError:
    return ConfigError(f"--model {name_or_path!r} is neither {expected}: {str(err).splitlines()[0]}")


TIMM_PREFIX = "timm/"


def build_image_target(
    name_or_path: str, task: ClassificationTask, train_dataset, seed: int = 42, image_size: int | None = None
) -> TargetModel:
    """``timm/<architecture>``: that timm network with random weights inside `TimmWrapperForImageClassification`;
    else a local path / Hub id of a pretrained image-classification model. Inputs are normalised with the training
    images' per-channel statistics (saved in the config's ``pretrained_cfg``, which `AutoImageProcessor` reads)."""
    from .vision import TIMM_TARGET_DEFAULTS, build_timm_target, channel_stats, iter_image_batches

    images = np.concatenate(list(iter_image_batches(train_dataset, task.image_column, 1024, image_size)))
    mean, std = channel_stats(images)
    shape = tuple(images.shape[2:])
    if name_or_path.startswith(TIMM_PREFIX):
        model = build_timm_target(name_or_path[len(TIMM_PREFIX) :], task.label_names, mean, std, shape, seed)
        note = (
            f"{name_or_path} was built with random weights (timm's initialisation, pretrained=False); inputs are "
            f"{shape[0]}x{shape[1]} images normalised with the training images' mean {mean} and std {std}"
        )
        return TargetModel(model, None, "timm", TIMM_TARGET_DEFAULTS, [note], 0, (mean, std), image_size)
    from transformers import AutoModelForImageClassification

    expected = "timm/ARCHITECTURE nor a loadable image-classification model"
    model = _from_pretrained(AutoModelForImageClassification, name_or_path, task, expected)
    cfg = getattr(model.config, "pretrained_cfg", None) or {}
    if cfg.get("mean") and cfg.get("std"):  # keep the statistics the model was trained with
        mean, std = list(cfg["mean"]), list(cfg["std"])
    return TargetModel(model, None, "pretrained-image", TIMM_TARGET_DEFAULTS, [], 0, (mean, std), image_size)


def train_wordpiece(texts: Iterable[str] | Iterable[list[str]], vocab_size: int = 8000, max_length: int = 128):
    """A lowercase WordPiece tokenizer (BERT's special tokens and pre-tokenisation) whose vocabulary is learnt from
    ``texts`` (strings, or batches of strings, streamed).

    The vocabulary is chosen by frequency, deterministically: every character seen (alone and as a ``##``
    continuation), then the most frequent whole words, word-initial pieces and ``##`` word endings, ties broken
    alphabetically. (The `tokenizers` WordPiece trainer breaks ties in hash order, so two runs on the same texts give
    different vocabularies and, with them, different models: not acceptable for seeded runs.)
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for item in texts:
        for text in [item] if isinstance(item, str) else item:
            words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text or "")))
    chars = sorted({c for w in words for c in w})
    pieces: Counter[str] = Counter()
    for word, count in words.items():
        pieces[word] += count
        for i in range(2, len(word)):
            pieces[word[:i]] += count  # word-initial pieces
            pieces["##" + word[i - 1 :]] += count  # word endings
    vocab = [*special, *chars, *("##" + c for c in chars)]
    taken = set(vocab)
    ranked = sorted((p for p in pieces if p not in taken), key=lambda p: (-pieces[p], p))
    vocab += ranked[: max(0, vocab_size - len(vocab))]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length,
    )  # fmt: skip


def _encode(dataset, target: TargetModel, task: TextClassificationTask, pad_to_max_length: bool = False):
    labels = task.encode_labels(dataset)
    keep = np.flatnonzero(labels >= 0)
    if keep.size < len(labels):
        logger.warning("%d rows without a label are left out", len(labels) - keep.size)
        dataset, labels = dataset.select(keep), labels[keep]
    texts = dataset.select_columns([task.text_column])

    def tokenize(batch):
        texts = [t or "" for t in batch[task.text_column]]
        if hasattr(target.tokenizer, "encode_batch"):  # VDCNN's vectorised path
            return target.tokenizer.encode_batch(texts, target.max_length)
        # unpadded rows: the Trainer's default collator pads each batch to its longest row, so short texts (SST-2)
        # do not pay for max_length (attention masks make padding inert; dropout masks differ with the shape, so
        # training is not bit-identical to padded training)
        padding = "max_length" if pad_to_max_length else False
        return target.tokenizer(texts, truncation=True, padding=padding, max_length=target.max_length)

    # in memory: a dataset loaded from disk would otherwise get cache-*.arrow files written beside its own
    encoded = texts.map(
        tokenize, batched=True, batch_size=1000, remove_columns=[task.text_column], keep_in_memory=True
    )
    return encoded.add_column("labels", labels.tolist())


def _encode_images(dataset, target: TargetModel, task: ClassificationTask, train: bool):
    from .vision import image_classification_dataset

    labels = task.encode_labels(dataset)
    keep = np.flatnonzero(labels >= 0)
    if keep.size < len(labels):
        logger.warning("%d rows without a label are left out", len(labels) - keep.size)
        dataset, labels = dataset.select(keep), labels[keep]
    mean, std = target.normalisation
    return image_classification_dataset(
        dataset, task.image_column, labels, mean, std, train=train, size=target.image_size
    )


def _compute_metrics(num_labels: int):
    from .metrics import load

    accuracy, macro_f1 = load("accuracy"), load("macro_f1")

    def compute(eval_pred):
        logits, references = eval_pred
        logits = logits[0] if isinstance(logits, tuple) else logits
        predictions = np.asarray(logits).argmax(-1)
        out = accuracy.compute(predictions=predictions, references=references)
        out.update(macro_f1.compute(predictions=predictions, references=references, labels=list(range(num_labels))))
        return out

    return compute


def vdcnn_optimizer(model, learning_rate: float, weight_decay: float, steps_per_epoch: int):
    """The reference's schedule: SGD with momentum 0.9, weight decay 1e-4, the learning rate halved every 3 epochs."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    every = max(1, 3 * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** (step // every))
    return optimizer, scheduler


def _sgd_cosine_optimizers(model, args, num_rows: int):
    """SGD with Nesterov momentum 0.9 (no weight decay on biases and norm scales), linear warm-up over
    ``warmup_steps``, then a cosine decay to 0: the usual recipe for ResNets trained from scratch on CIFAR."""
    import torch

    from .vision import warmup_cosine

    world = max(1, args.world_size)
    steps_per_epoch = math.ceil(num_rows / (args.per_device_train_batch_size * world))
    total = max(1, math.ceil(steps_per_epoch / args.gradient_accumulation_steps) * math.ceil(args.num_train_epochs))
    warm = int(args.warmup_steps * total) if args.warmup_steps < 1 else int(args.warmup_steps)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.learning_rate, momentum=0.9, nesterov=True,
    )  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, warm, total))
    return optimizer, scheduler


def train_target(
    train_dataset,
    model: str,
    output_dir: str | os.PathLike,
    *,
    eval_dataset=None,
    text_column: str = "text",
    label_column: str = "label",
    image_column: str | None = None,
    training_args: dict[str, Any] | None = None,
    max_length: int | None = None,
    image_size: int | None = None,
    selection_config: dict[str, Any] | None = None,
    overwrite: bool = False,
    pad_to_max_length: bool = False,
    head_init: str | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``train_dataset``, evaluate on ``eval_dataset``, save everything to ``output_dir``.

    ``training_args`` are `transformers.TrainingArguments` fields; unset ones take the model's defaults (VDCNN: the
    reference's SGD schedule, batch 128, 15 epochs; BERT from a config: AdamW, lr 5e-4, 10 epochs; a pretrained text
    model (``minilm``, a local path or Hub id): the measured pretrained-encoder recipe, AdamW, lr 1e-4 (3e-5 from 60M
    parameters), enough epochs for 100 optimizer steps (3 to 20), 10% warm-up, 256 tokens; timm: SGD with Nesterov
    momentum 0.9, lr 0.1, weight decay 5e-4, warm-up then cosine decay, batch 128, 30 epochs, random crop + flip).
    With ``image_column`` the rows are images and ``model`` is ``timm/<architecture>`` or a pretrained image model;
    ``image_size`` resizes their shorter side and cuts out the centre square (saved as the model's eval transform).
    Text batches are padded to their longest row; ``pad_to_max_length`` pads every row to ``max_length`` instead
    (static shapes, e.g. for ``torch_compile``). ``head_init`` ``"probe"`` starts the new output layer from a linear
    probe on the frozen encoder (`svp_hf.head_init`), ``"random"`` from the model's own random initialisation;
    ``"auto"`` (the default) probes a pretrained text model's head when the fine-tune is short for its number of
    classes. Returns the final metrics.
    """
    import torch
    from transformers import Trainer, TrainingArguments

    output_dir = check_output_path(output_dir, overwrite=overwrite, inputs=[train_dataset, eval_dataset])
    given = dict(training_args or {})
    check_training_args(given)
    for flag, value in (("max-length", max_length), ("image-size", image_size)):
        if value is not None and not value > 0:
            raise ConfigError(f"--{flag} must be a positive number, got {value}")
    if model.startswith(TIMM_PREFIX) and not image_column:
        raise ConfigError(f"--model {model} is an image network: pass the image column with --image-column NAME")
    if train_dataset.num_rows == 0:
        raise EmptyPoolError("the training dataset has no rows: nothing to train on (check --dataset and --split)")
    check_input_column(train_dataset, text_column, image_column)  # names --image-column when the rows are images
    task = task_from_dataset(train_dataset, text_column, label_column, image_column)
    if task.modality == "image":
        target = build_image_target(model, task, train_dataset, int(given.get("seed", 42)), image_size)
        train_enc = _encode_images(train_dataset, target, task, train=True)
        eval_enc = _encode_images(eval_dataset, target, task, train=False) if eval_dataset is not None else None
    else:
        from transformers import set_seed

        set_seed(int(given.get("seed", 42)))  # a model built from a config draws its initial weights now
        target = build_target(model, task, train_dataset, max_length)
        train_enc = _encode(train_dataset, target, task, pad_to_max_length)
        eval_enc = _encode(eval_dataset, target, task, pad_to_max_length) if eval_dataset is not None else None
    if len(train_enc) == 0:
        raise LabelError(f"none of the {train_dataset.num_rows} training rows has a label: nothing to train on")
    _check_head_init(head_init, target)

    partial = output_dir.with_name(output_dir.name + ".partial")
    # --save_steps N alone means "save every N steps" (eval, logging alike): the "epoch" defaults would ignore it
    by_steps = {f"{k}_strategy": "steps" for k in ("save", "eval", "logging") if given.get(f"{k}_steps") is not None}
    values = {
        **target.defaults,
        "eval_strategy": "epoch" if eval_enc is not None else "no",
        "save_strategy": "epoch",
        "save_total_limit": 1,
        "logging_strategy": "epoch",
        "report_to": "none",
        "use_cpu": not torch.cuda.is_available(),
        **({"remove_unused_columns": False} if task.modality == "image" else {}),  # the transform reads the images
        **by_steps,
        **given,  # an explicit --save_strategy wins
        "output_dir": str(partial),
    }
    if eval_enc is None and getattr(values["eval_strategy"], "value", values["eval_strategy"]) != "no":
        raise ConfigError("evaluation was asked for (--eval_strategy / --eval_steps) but there is no eval dataset")
    try:
        args = TrainingArguments(**values)
        if target.kind == "pretrained" and "num_train_epochs" not in given and "max_steps" not in given:
            epochs = pretrained_epochs(
                len(train_enc), args.per_device_train_batch_size, args.world_size, args.gradient_accumulation_steps
            )
            values["num_train_epochs"] = epochs  # the recipe's step floor, for the batch size actually used
            args = TrainingArguments(**values)
            target.notes.append(
                f"fine-tuning recipe for pretrained encoders: {epochs} epochs (at least {PRETRAINED_MIN_STEPS} "
                f"optimizer steps on {len(train_enc)} rows), learning rate {args.learning_rate:g}, warm-up over the "
                f"first 10% of steps, {target.max_length} tokens"
            )
    except ValueError as err:
        raise ConfigError(f"invalid training arguments: {str(err).strip().splitlines()[0]}") from err
    optimizers = (None, None)
    if target.kind == "vdcnn" and "optim" not in given:
        if "warmup_steps" in given and "lr_scheduler_type" not in given:
            raise ConfigError(
                "VDCNN's reference schedule (lr halved every 3 epochs) has no warm-up: pass --lr_scheduler_type too "
                "(e.g. linear) to use transformers' schedule with --warmup_steps"
            )
        world = max(1, args.world_size)
        steps_per_epoch = math.ceil(len(train_enc) / (args.per_device_train_batch_size * world))
        steps_per_epoch = math.ceil(steps_per_epoch / args.gradient_accumulation_steps)
        optimizers = vdcnn_optimizer(target.model, args.learning_rate, args.weight_decay, steps_per_epoch)
    elif target.kind in ("timm", "pretrained-image") and "optim" not in given:
        optimizers = _sgd_cosine_optimizers(target.model, args, len(train_enc))
    if "lr_scheduler_type" in given and optimizers[0] is not None:  # the Trainer builds that schedule on our SGD
        optimizers = (optimizers[0], None)
    record = run_record(model, task, train_dataset, eval_dataset, args, max_length, image_size, pad_to_max_length)
    head_init = _resolve_head_init(head_init, target, task, args, len(train_enc))
    record["head_init"] = head_init
    resume = _prepare_partial(partial, record, overwrite, main=args.process_index == 0)
    if head_init == "probe" and not resume:  # a resumed run takes its weights from the checkpoint
        _probe_head(target, train_enc, task, args)
    trainer = Trainer(
        model=target.model,
        args=args,
        train_dataset=train_enc,
        eval_dataset=eval_enc,
        processing_class=target.tokenizer,
        compute_metrics=_compute_metrics(task.num_labels),
        optimizers=optimizers,
    )
    if resume:
        logger.warning("resuming from %s", resume)
    train_output = trainer.train(resume_from_checkpoint=resume)
    metrics = {"train_" + k.removeprefix("train_"): v for k, v in train_output.metrics.items()}
    metrics.update(train_global_step=train_output.global_step, world_size=args.world_size)
    if eval_enc is not None:
        metrics.update(trainer.evaluate())
    if trainer.is_world_process_zero():
        with atomic_directory(output_dir, overwrite=overwrite) as tmp:
            trainer.save_model(str(tmp))
            (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; the settings are in the card and JSON
            write_json_atomic(tmp / "training_args.json", json.loads(args.to_json_string()))
            write_json_atomic(tmp / "eval_results.json", {k: v for k, v in metrics.items() if k.startswith("eval_")})
            write_json_atomic(tmp / "all_results.json", metrics)
            if selection_config is not None:
                write_json_atomic(tmp / "selection_config.json", selection_config)
            (tmp / "README.md").write_text(_model_card(model, target, task, metrics, values, selection_config))
            # safetensors writes model.safetensors through a private temporary file (mode 0600): make every file
            # readable like one this process creates
            for path in tmp.rglob("*"):
                if path.is_file():
                    os.chmod(path, 0o666 & ~_umask())

        shutil.rmtree(partial, ignore_errors=True)
    return metrics


def _check_head_init(head_init: str | None, target: TargetModel) -> None:
    from .head_init import HEAD_INITS

    if head_init is not None and head_init not in HEAD_INITS:
        raise ConfigError(f"--head-init must be one of {', '.join(HEAD_INITS)}, got {head_init!r}")
    if head_init == "probe" and target.kind not in ("pretrained", "bert-config"):
        raise ConfigError(
            f"--head-init probe is for transformer text models (a pretrained checkpoint or a BERT shape), not "
            f"{target.kind}: drop it or pass random"
        )


def _resolve_head_init(head_init: str | None, target: TargetModel, task: ClassificationTask, args, rows: int) -> str:
    """``"probe"`` or ``"random"``: ``auto`` (None) decides by the rows of each class the fine-tune will show."""
    from .head_init import resolve_head_init

    if args.max_steps > 0:
        per_step = args.per_device_train_batch_size * max(1, args.world_size) * args.gradient_accumulation_steps
        seen = args.max_steps * per_step / task.num_labels
    else:  # epochs x rows / classes, as the transformer proxy counts it
        seen = args.num_train_epochs * rows / task.num_labels
    resolved = resolve_head_init(head_init, pretrained=target.kind == "pretrained", rows_seen_per_class=seen)
    if head_init in (None, "auto") and target.kind == "pretrained":
        target.notes.append(
            f"output layer: {'a linear probe' if resolved == 'probe' else 'random initialisation'} (head_init auto: "
            f"the fine-tune shows each class about {seen:.0f} rows)"
        )
    return resolved


def _probe_head(target: TargetModel, train_enc, task: ClassificationTask, args, batch_size: int = 64) -> None:
    """Start ``target``'s output layer from a linear probe on its frozen encoder's features of (a seeded sample of)
    the training rows; each process fits the same probe on the same rows."""
    from .head_init import init_head_by_probe, probe_rows

    rows = probe_rows(len(train_enc), args.seed)
    encoded = train_enc.select(rows) if len(rows) < len(train_enc) else train_enc
    inputs = encoded.remove_columns("labels")
    model = target.model.to(args.device)

    def batches():
        for start in range(0, len(inputs), batch_size):
            padded = target.tokenizer.pad(inputs[start : start + batch_size], return_tensors="pt")
            yield {k: v.to(args.device) for k, v in padded.items()}

    result = init_head_by_probe(model, batches(), np.asarray(encoded["labels"]), task.num_labels)
    if result is not None:
        target.notes.append(result.describe())
        logger.info(result.describe())


def _checkpoints(folder: Path) -> list[Path]:
    """``folder``'s Trainer checkpoints, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _is_complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished writing ``checkpoint``: it writes the weights, optimizer, scheduler and RNG states
    first and ``trainer_state.json`` last, so a kill mid-save leaves that file absent or cut short."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")
    return isinstance(state, dict) and "global_step" in state and any((checkpoint / w).is_file() for w in weights)


def _last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint in ``folder`` (one cut short by a kill is passed over)."""
    complete = [p for p in _checkpoints(folder) if _is_complete(p)]
    return str(complete[-1]) if complete else None


def check_training_args(given: dict[str, Any]) -> None:
    """Refuse `TrainingArguments` values that are no fields, would do no training or would be overridden, before any
    work."""
    import dataclasses
    import difflib

    from transformers import TrainingArguments

    names = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
    for key in given:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key!r} is not a transformers.TrainingArguments field{hint}")
    epochs, steps = given.get("num_train_epochs"), given.get("max_steps")
    if epochs is not None and not epochs > 0 and not (steps is not None and steps > 0):
        raise ConfigError(
            f"--num_train_epochs {epochs} would train nothing: give a positive number of epochs (or --max_steps N)"
        )
    if "output_dir" in given:
        raise ConfigError("--output_dir is not a training flag here: pass the output folder as --output-dir")
    if "resume_from_checkpoint" in given:
        raise ConfigError(
            "--resume_from_checkpoint is not needed: a rerun with the same inputs resumes from OUTPUT_DIR.partial/"
        )


RUN_RECORD = "svp_hf_run.json"
# TrainingArguments fields a rerun may change and still resume: they decide what is logged, reported, pushed or
# checkpointed, how often, and on which device or how fast batches load, not what is trained. Every other field
# (defaults included) must match, as must the model, the rows and the input size.
_FREE_FIELDS = frozenset({
    "output_dir", "run_name", "project", "report_to", "disable_tqdm", "push_to_hub", "skip_memory_metrics",
    "use_cpu", "local_rank", "ddp_timeout", "resume_from_checkpoint", "do_train", "do_eval", "do_predict",
    "enable_jit_checkpoint", "per_device_eval_batch_size", "eval_accumulation_steps", "eval_do_concat_batches",
    "eval_use_gather_object", "batch_eval_metrics", "include_num_input_tokens_seen", "torch_empty_cache_steps",
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers", "dataloader_prefetch_factor",
    "dataloader_multiprocessing_context",
})  # fmt: skip
_FREE_PREFIXES = ("logging_", "log_", "save_", "hub_", "trackio_")


def run_record(model, task, train_dataset, eval_dataset, args, max_length, image_size, pad_to_max_length) -> dict:
    """What identifies a training run, written to ``OUTPUT_DIR.partial/svp_hf_run.json``: a checkpoint is resumed
    only by a run with the same record."""
    path = Path(model).expanduser()
    columns = [task.input_column, task.label_column]
    settings = {
        k: v
        for k, v in json.loads(args.to_json_string()).items()
        if k not in _FREE_FIELDS and not k.startswith(_FREE_PREFIXES)
    }
    record = {
        "model": str(path.resolve()) if path.exists() else model,
        "train_rows": rows_fingerprint(train_dataset, columns),
        "eval_rows": rows_fingerprint(eval_dataset, columns) if eval_dataset is not None else None,
        "label_names": list(task.label_names),
        "max_length": max_length,
        "image_size": image_size,
        "pad_to_max_length": pad_to_max_length,
        "world_size": args.world_size,
        "training_args": settings,
    }
    return json.loads(json.dumps(record, default=str))  # as it reads back from the file


def rows_fingerprint(dataset, columns: list[str]) -> dict[str, Any]:
    """The number of rows and a SHA-256 of the values in ``columns``, row by row. Computed from the values, not taken
    from ``dataset._fingerprint``, which is random for datasets built in memory or with caching disabled."""
    digest = hashlib.sha256(json.dumps(columns).encode())
    view = dataset.select_columns(columns).with_format("arrow")
    for batch in view.iter(batch_size=4096):
        for name in columns:
            values = batch.column(name).to_pylist()  # images: {"bytes": ..., "path": ...}; bytes are hashed
            digest.update(json.dumps(values, default=_digest_of).encode())
    return {"num_rows": dataset.num_rows, "sha256": digest.hexdigest()}


def _digest_of(value: Any) -> str:
    return hashlib.sha256(value).hexdigest() if isinstance(value, bytes) else repr(value)


def _prepare_partial(partial: Path, record: dict[str, Any], overwrite: bool, main: bool) -> str | None:
    """The checkpoint in ``partial`` to resume from: its last one if ``record`` matches the run that wrote it; else a
    `CheckpointMismatchError`, or with ``overwrite`` nothing (the main process discards the folder and starts afresh).
    Only the main process writes; every process reaches the same answer."""
    checkpoint = _last_checkpoint(partial)
    if checkpoint is not None:
        try:
            old = json.loads((partial / RUN_RECORD).read_text())
        except (OSError, ValueError):  # none (an older svp-hf), or unreadable: the run cannot be checked
            old = None
        if isinstance(old, dict):
            differences = _record_differences(old, record)
            if not differences:
                if main:  # checkpoints cut short by a kill, newer than the one resumed: the Trainer would rotate
                    for cut in _checkpoints(partial):  # them as if they were its own
                        if not _is_complete(cut):
                            logger.warning("removing %s: a checkpoint cut short by an interrupted run", cut)
                            shutil.rmtree(cut, ignore_errors=True)
                return checkpoint
            shown = "; ".join(differences[:5]) + ("; ..." if len(differences) > 5 else "")
            why, fix = f"of a different training run ({shown})", "rerun with the same inputs to resume it, or "
        else:
            why, fix = f"with no {RUN_RECORD} to say which run wrote them (an older svp-hf), so unchecked", ""
        if not overwrite:
            raise CheckpointMismatchError(
                f"{partial} holds checkpoints {why}: {fix}pass --overwrite (overwrite=True) to discard them and start "
                "afresh"
            )
        logger.warning("discarding %s: checkpoints %s", partial, why)
    if main:
        shutil.rmtree(partial, ignore_errors=True)
        write_json_atomic(partial / RUN_RECORD, record)
    return None


def _record_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    differences = []
    for key, value in new.items():
        before = old.get(key)
        if key == "training_args":
            before = before if isinstance(before, dict) else {}
            differences += [
                f"{name} {before.get(name)!r} -> {value.get(name)!r}"
                for name in sorted(set(before) | set(value))
                if before.get(name) != value.get(name)
            ]
        elif before != value and key.endswith("_rows"):
            rows = (before or {}).get("num_rows"), (value or {}).get("num_rows")
            what = f"{rows[0]} -> {rows[1]} rows" if rows[0] != rows[1] else f"{rows[1]} rows, other values"
            differences.append(f"{key.replace('_', ' ')} ({what})")
        elif before != value:
            differences.append(f"{key} {before!r} -> {value!r}")
    return differences


def _model_card(name, target, task, metrics, args, selection) -> str:
    lines = [
        "---",
        "library_name: transformers",
        f"pipeline_tag: {'image' if task.modality == 'image' else 'text'}-classification",
        "tags:",
        "- svp-hf",
        "- selection-via-proxy",
        *(["- timm"] if target.kind == "timm" else []),
        "---",
        "",
        f"# {name} trained on rows selected by svp-hf",
        "",
    ]
    if selection:
        cfg = selection.get("config", {})
        src = selection.get("source", {})
        lines.append(
            f"Trained on {selection.get('num_selected')} of {selection.get('pool_size')} rows of "
            f"`{src.get('dataset', 'the pool')}` (split `{src.get('split')}`), chosen by the "
            f"**{cfg.get('strategy')}** strategy with a **{cfg.get('proxy')}** proxy (Selection via Proxy); "
            "`selection_config.json` beside this card records the selection."
        )
        if selection.get("command"):
            lines += ["", "```bash", selection["command"], "```"]
    lines += ["", f"Classes: {', '.join(task.label_names)}.", ""]
    if task.modality == "image":
        lines += [
            "```python",
            *(
                ["import svp_hf.models.cifar_resnet  # registers the architecture with timm"]
                if "cifar_" in name
                else []
            ),
            "from transformers import AutoImageProcessor, AutoModelForImageClassification",
            "",
            'processor = AutoImageProcessor.from_pretrained("PATH")  # the eval transform, from config.json',
            'model = AutoModelForImageClassification.from_pretrained("PATH")',
            'logits = model(**processor(images, return_tensors="pt")).logits',
            "```",
            "",
        ]
    lines += [f"- {note}" for note in target.notes]
    evals = {k: v for k, v in metrics.items() if k.startswith("eval_") and isinstance(v, (int, float))}
    if evals:
        lines += ["", "## Evaluation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k.removeprefix('eval_')} | {v:.4f} |" for k, v in sorted(evals.items())]
    shown = ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "weight_decay", "seed")
    lines += ["", "## Training", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {args[k]} |" for k in shown if k in args]
    return "\n".join(lines) + "\n"


def load_selection_config(dataset_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(dataset_dir) / "selection_config.json"
    return json.loads(path.read_text()) if path.is_file() else None
