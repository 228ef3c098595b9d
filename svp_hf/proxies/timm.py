"""The timm proxy: any `timm.create_model` architecture, trained from scratch (or from a local checkpoint) on an image
column, scored and embedded with eval transforms only.

timm and torch are imported inside the methods, so text-only users never pay for them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ProxyError
from ..vision import (
    channel_stats,
    check_timm_model,
    import_timm,
    iter_image_batches,
    normalise,
    random_crop_flip,
    warmup_cosine,
)
from .base import Proxy, ProxyOutputs, register_proxy

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "timm_proxy.json"


@register_proxy("timm")
class TimmProxy(Proxy):
    """A timm image classifier as a proxy: trained with SGD on the labeled images, with random-crop and flip
    augmentation; probabilities and embeddings always come from the un-augmented images in eval mode.

    Hyperparameters (``--proxy-kwargs``):

    - ``model_name`` ``"resnet18"``: any name `timm.list_models()` knows; random weights (``pretrained=False``).
    - ``checkpoint`` none: a local ``.safetensors`` file, or a folder holding ``model.safetensors`` (a saved proxy or
      an ``svp-hf train --model timm/...`` output), to start from; a classifier whose shape differs is left out.
      Nothing is ever downloaded.
    - ``model_args`` ``{}``: extra `timm.create_model` keyword arguments (e.g. ``{"drop_rate": 0.1}``).
    - ``epochs`` 10, ``batch_size`` 128, ``lr`` 0.1, ``momentum`` 0.9, ``weight_decay`` 5e-4, ``warmup`` 0.1: SGD
      (Nesterov) with a linear warm-up over that fraction of the steps, then a cosine decay to 0.
    - ``augment`` true: random crop (zero padding of 1/8 of the side) and horizontal flip while training.
    - ``image_size`` none: resize the shorter side to this and cut out the centre square (timm's eval transform);
      by default images are used at their size, which must then be the same for all (CIFAR: 32).
    - ``eval_batch_size`` 256: images per forward pass when scoring.
    - ``device`` ``"auto"``: ``"cuda"`` when a GPU is present, else ``"cpu"``; or any torch device string.

    Inputs are normalised with the per-channel mean and standard deviation of the training images. Training images
    are decoded once into a ``uint8`` array (``N x 3 x H x W`` bytes: 150 MB for CIFAR-10's 50,000); scoring decodes
    Arrow batches as it goes. Classes absent from the training rows get probability 0. Deterministic under the seed
    on a CPU. Epoch-by-epoch predictions (``observe``) make ``forgetting_events`` work.
    """

    defaults = {
        "model_name": "resnet18",
        "checkpoint": None,
        "model_args": {},
        "epochs": 10,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "warmup": 0.1,
        "augment": True,
        "image_size": None,
        "eval_batch_size": 256,
        "device": "auto",
    }
    observable = True
    # training is the expensive part: no self-check unless asked for ({"self_check": true}: a held-out fifth)
    self_check_default = False
    cv_folds = 1
    modality = "image"

    def __init__(self, seed: int = 0, **hyperparameters: Any):
        super().__init__(seed=seed, **hyperparameters)
        h = self.hyperparameters
        h["model_args"] = dict(h["model_args"] or {})
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if isinstance(h[name], bool) or not isinstance(h[name], int) or h[name] <= 0:
                raise ConfigError(f"timm proxy: {name} must be a positive integer, got {h[name]!r}")
        if h["image_size"] is not None and (not isinstance(h["image_size"], int) or h["image_size"] < 8):
            raise ConfigError(f"timm proxy: image_size must be an integer of at least 8, got {h['image_size']!r}")
        if not 0 <= float(h["warmup"]) < 1:
            raise ConfigError(f"timm proxy: warmup is a fraction of the steps in [0, 1), got {h['warmup']!r}")
        if float(h["lr"]) <= 0:
            raise ConfigError(f"timm proxy: lr must be positive, got {h['lr']!r}")
        self.model = None
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.trained_classes: np.ndarray | None = None  # bool [C]: classes seen in training
        self.image_shape: tuple[int, int] | None = None  # (H, W) the model was trained on

    # -- model ----------------------------------------------------------------------------------------------
    def _device(self):
        import torch

        wanted = self.hyperparameters["device"]
        if wanted == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(wanted)

    def _create_model(self, num_classes: int):
        timm = import_timm()
        name = self.hyperparameters["model_name"]
        check_timm_model(name)
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **self.hyperparameters["model_args"])

    def _load_checkpoint(self, model) -> None:
        path = Path(os.fspath(self.hyperparameters["checkpoint"])).expanduser()
        if path.is_dir():
            path = path / WEIGHTS_FILE
        if not path.is_file() or path.suffix != ".safetensors":
            raise ConfigError(
                f"timm proxy checkpoint {path} is not a .safetensors file (or a folder with {WEIGHTS_FILE})"
            )
        from safetensors.torch import load_file

        state = {k.removeprefix("timm_model."): v for k, v in load_file(str(path)).items()}
        own = model.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not usable:
            raise ProxyError(f"checkpoint {path} has no weights for a {self.hyperparameters['model_name']} model")
        skipped = sorted(set(state) - set(usable))
        if skipped:
            logger.info("checkpoint %s: %d tensors left out (other shapes or names): %s", path, len(skipped), skipped)
        model.load_state_dict(usable, strict=False)

    # -- images -> tensors ----------------------------------------------------------------------------------
    def _image_batches(self, dataset, batch_size: int) -> Iterator[np.ndarray]:
        """uint8 arrays ``[B, 3, H, W]`` of the image column, in row order, decoded batch by batch."""
        for arr in iter_image_batches(dataset, self.task.image_column, batch_size, self.hyperparameters["image_size"]):
            if self.image_shape is not None and len(arr) and tuple(arr.shape[2:]) != self.image_shape:
                raise ProxyError(
                    f"images of size {tuple(arr.shape[2:])}, the proxy was trained on {self.image_shape}; set "
                    "image_size in --proxy-kwargs to resize them to one size"
                )
            yield arr

    def _decode_all(self, dataset) -> np.ndarray:
        parts = list(self._image_batches(dataset, 1024))
        return np.concatenate(parts) if parts else np.zeros((0, 3, 1, 1), np.uint8)

    def _normalise(self, batch_uint8, device):
        return normalise(batch_uint8, self.mean, self.std, device)

    # -- training -------------------------------------------------------------------------------------------
    def _fit(self, dataset, labels: np.ndarray) -> None:
        self._train(dataset, labels, observe=None)

    def _fit_observed(self, dataset, labels: np.ndarray, observe) -> np.ndarray:
        return self._train(dataset, labels, observe=observe)

    def _train(self, dataset, labels: np.ndarray, observe) -> np.ndarray | None:
        import torch
        import torch.nn.functional as F

        h = self.hyperparameters
        device = self._device()
        self.image_shape = None
        images = self._decode_all(dataset)
        if len(images) < 2:
            raise ProxyError(
                f"the timm proxy needs at least 2 labeled images to train (batch norm), got {len(images)}"
            )
        self.image_shape = tuple(images.shape[2:])
        self.mean, self.std = channel_stats(images)
        self.trained_classes = np.bincount(labels, minlength=self.task.num_labels) > 0
        observe_images = None
        if observe is not None:
            same = observe is dataset or observe._fingerprint == dataset._fingerprint
            observe_images = images if same else self._decode_all(observe)

        torch.manual_seed(self.seed)
        if device.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        model = self._create_model(self.task.num_labels)
        if h["checkpoint"]:
            self._load_checkpoint(model)
        model.to(device)
        self.model = model
        generator = torch.Generator().manual_seed(self.seed)
        n, batch = len(images), min(int(h["batch_size"]), len(images))
        steps_per_epoch = math.ceil(n / batch)
        if n % batch == 1:  # batch norm cannot train on a last batch of one image: it joins the one before
            steps_per_epoch -= 1
        total = steps_per_epoch * int(h["epochs"])
        decay, no_decay = [], []
        for p in model.parameters():  # no weight decay on biases and norm scales, as timm's own recipes do
            (no_decay if p.ndim <= 1 else decay).append(p)
        optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": float(h["weight_decay"])}, {"params": no_decay, "weight_decay": 0.0}],
            lr=float(h["lr"]), momentum=float(h["momentum"]), nesterov=float(h["momentum"]) > 0,
        )  # fmt: skip
        warm = int(float(h["warmup"]) * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warm, total))
        targets = torch.as_tensor(labels, dtype=torch.long)
        images_t = torch.from_numpy(images)
        history = []
        for _ in range(int(h["epochs"])):
            model.train()
            order = torch.randperm(n, generator=generator)
            chunks = list(order.split(batch))
            if len(chunks) > 1 and len(chunks[-1]) == 1:
                chunks[-2:] = [torch.cat(chunks[-2:])]
            for idx in chunks:
                x = images_t[idx]
                if h["augment"]:
                    x = random_crop_flip(x, generator)
                x = self._normalise(x, device)
                loss = F.cross_entropy(model(x), targets[idx].to(device))
                if not torch.isfinite(loss):
                    raise ProxyError(f"timm proxy training diverged (loss {loss.item()}); lower lr (now {h['lr']})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
            if observe_images is not None:
                history.append(self._forward_arrays([observe_images], probs=True)["probs"].argmax(1))
        model.eval()
        return np.stack(history) if observe_images is not None else None

    # -- scoring --------------------------------------------------------------------------------------------
    def _forward_arrays(self, batches, probs: bool = True, embeddings: bool = False, progress: bool = False):
        """Eval-mode forward passes over uint8 image batches: softmax probabilities (classes never trained on get 0)
        and pooled pre-logit features (`forward_head(..., pre_logits=True)`)."""
        import torch

        device = self._device()
        model = self.model
        was_training = model.training
        model.eval()
        step = int(self.hyperparameters["eval_batch_size"])
        mask = torch.as_tensor(~self.trained_classes, device=device)
        out_probs, out_emb = [], []
        bar = _progress(progress)
        try:
            with torch.inference_mode():
                for arr in batches:
                    for start in range(0, len(arr), step):
                        x = self._normalise(arr[start : start + step], device)
                        features = model.forward_features(x)
                        if embeddings:
                            pooled = model.forward_head(features, pre_logits=True)
                            out_emb.append(pooled.flatten(1).float().cpu().numpy())
                        if probs:
                            logits = model.forward_head(features).float().masked_fill(mask, float("-inf"))
                            out_probs.append(torch.softmax(logits, dim=1).cpu().numpy())
                        if bar is not None:
                            bar.update(len(x))
        finally:
            model.train(was_training)
            if bar is not None:
                bar.close()
        out = {}
        if probs:
            out["probs"] = np.concatenate(out_probs) if out_probs else np.zeros((0, self.task.num_labels), np.float32)
        if embeddings:
            out["embeddings"] = np.concatenate(out_emb) if out_emb else np.zeros((0, 0), np.float32)
        return out

    def _predict_proba(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        return self._forward_arrays(self._image_batches(dataset, batch_size), probs=True, progress=progress)["probs"]

    def _embed(self, dataset, batch_size: int, progress: bool) -> np.ndarray:
        batches = self._image_batches(dataset, batch_size)
        return self._forward_arrays(batches, probs=False, embeddings=True, progress=progress)["embeddings"]

    def score(
        self, dataset, *, probs: bool = True, embeddings: bool = False, batch_size: int = 8192, progress: bool = False
    ) -> ProxyOutputs:
        """One pass over the images for both outputs (the base class would decode and run the network twice)."""
        if not (probs and embeddings):
            return super().score(dataset, probs=probs, embeddings=embeddings, batch_size=batch_size, progress=progress)
        self._check_fitted()
        out = self._forward_arrays(self._image_batches(dataset, batch_size), True, True, progress)
        return ProxyOutputs(dataset.num_rows, probs=out["probs"].astype(np.float32), embeddings=out["embeddings"])

    # -- persistence: safetensors + JSON, no pickle ---------------------------------------------------------
    def _save(self, path: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE))
        meta = {
            "mean": self.mean,
            "std": self.std,
            "trained_classes": self.trained_classes.tolist(),
            "image_shape": list(self.image_shape),
        }
        (path / STATE_FILE).write_text(json.dumps(meta, indent=2))

    def _load(self, path: Path) -> None:
        from safetensors.torch import load_file

        meta = json.loads((path / STATE_FILE).read_text())
        self.mean, self.std = meta["mean"], meta["std"]
        self.trained_classes = np.asarray(meta["trained_classes"], dtype=bool)
        self.image_shape = tuple(meta["image_shape"])
        model = self._create_model(self.task.num_labels)
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        self.model = model.to(self._device()).eval()


def _progress(enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(desc="timm proxy scoring", unit="img")
