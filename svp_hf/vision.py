"""Images, shared by the timm proxy and timm targets: decoding an Image column in batches, per-channel statistics,
training augmentation (random crop + flip), the warm-up + cosine learning-rate factor, and timm targets wrapped in
transformers' `TimmWrapperForImageClassification` so that a trained target loads again with the Auto classes.

torch, timm and transformers are imported inside the functions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import ConfigError, MissingDependencyError, ProxyError

logger = logging.getLogger(__name__)


def import_timm():
    """``timm`` with svp-hf's CIFAR ResNets registered, or an error that says how to install it (it needs a
    torchvision from the same build as torch)."""
    try:
        import timm

        import svp_hf.models.cifar_resnet  # noqa: F401  (registers cifar_preact_resnet20/56/110/164)
    except ImportError as err:
        raise MissingDependencyError(
            f"images need timm and a torchvision built with your torch ({err}); pip install 'svp-hf[vision]'"
        ) from err
    return timm


def check_timm_model(name: str) -> None:
    timm = import_timm()
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('.')[0][:6]}*")[:5]
        raise ConfigError(f"timm has no model {name!r}" + (f"; similar: {', '.join(close)}" if close else ""))


def to_uint8(images: list, image_size: int | None = None, column: str = "image") -> np.ndarray:
    """PIL images -> ``uint8 [B, 3, H, W]`` (RGB). With ``image_size``: the shorter side is resized to it (bilinear),
    then the centre ``image_size`` square is cut out, exactly timm's eval transform at ``crop_pct=1``."""
    arrays = []
    for img in images:
        if img is None:
            raise ProxyError(f"a row of column {column!r} has no image")
        img = img.convert("RGB")
        if image_size is not None and img.size != (image_size, image_size):
            img = _resize_center_crop(img, image_size)
        arrays.append(np.asarray(img, dtype=np.uint8))
    if not arrays:
        return np.zeros((0, 3, image_size or 1, image_size or 1), np.uint8)
    shapes = sorted({a.shape[:2] for a in arrays})
    if len(shapes) > 1:
        raise ProxyError(
            f"images of different sizes {shapes[:4]}; resize them to one size with image_size (timm proxy "
            "kwarg) or --image-size (svp-hf train)"
        )
    return np.stack(arrays).transpose(0, 3, 1, 2)


def _resize_center_crop(img, size: int):
    from PIL import Image

    w, h = img.size
    new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    img = img.resize(new, resample=Image.Resampling.BILINEAR)
    left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def iter_image_batches(ds, column: str, batch_size: int, image_size: int | None = None) -> Iterator[np.ndarray]:
    """The image column as ``uint8 [B, 3, H, W]`` arrays, in row order, decoded one Arrow batch at a time."""
    import datasets

    view = ds.select_columns([column])
    feature = view.features[column]
    if isinstance(feature, datasets.Image) and not feature.decode:
        view = view.cast_column(column, datasets.Image(decode=True))
    for batch in view.with_format(None).iter(batch_size=batch_size):
        yield to_uint8(batch[column], image_size, column)


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (in [0, 1] units) of ``uint8 [N, 3, H, W]`` images."""
    n = len(images)
    total, total_sq, count = np.zeros(3), np.zeros(3), 0
    for start in range(0, n, 4096):  # float64 in chunks: exact enough, bounded memory
        chunk = images[start : start + 4096].reshape(-1, 3, images.shape[2] * images.shape[3]) / 255.0
        total += chunk.sum(axis=(0, 2))
        total_sq += (chunk**2).sum(axis=(0, 2))
        count += chunk.shape[0] * chunk.shape[2]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 1e-6))
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def normalise(batch_uint8, mean: list[float], std: list[float], device=None):
    """``uint8 [B, 3, H, W]`` (numpy or torch) -> normalised float32 tensor on ``device``."""
    import torch

    x = torch.as_tensor(batch_uint8)
    if device is not None:
        x = x.to(device, non_blocking=True)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x.float().div_(255.0) - m) / s


def random_crop_flip(x, generator=None):
    """Random crop with zero padding of 1/8 of the side, then a random horizontal flip, per image: the standard
    CIFAR training augmentation. ``x``: uint8 tensor ``[N, 3, H, W]``; returns the same shape and type."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    pad = max(1, round(min(h, w) / 8))
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = dx.view(n, 1) + torch.arange(w).view(1, w)
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then a cosine decay to 0 at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# --------------------------------------------------------------------------------------------------------------
# Targets: timm networks inside transformers' TimmWrapper classes
# --------------------------------------------------------------------------------------------------------------
TIMM_TARGET_DEFAULTS = {
    "learning_rate": 0.1,
    "per_device_train_batch_size": 128,
    "per_device_eval_batch_size": 256,
    "num_train_epochs": 30,
    "weight_decay": 5e-4,
    "warmup_steps": 0.05,  # a float below 1 is a fraction of the training steps
}


def build_timm_target(architecture: str, label_names: tuple[str, ...], mean, std, image_shape, seed: int = 42):
    """A `TimmWrapperForImageClassification` of a timm architecture with timm's own random initialisation
    (``pretrained=False``, nothing downloaded), its config carrying the eval transform (``pretrained_cfg``: input size,
    mean, std) so that `AutoImageProcessor.from_pretrained` of the saved folder rebuilds it."""
    import torch
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    timm = import_timm()
    check_timm_model(architecture)
    id2label = dict(enumerate(label_names))
    config = TimmWrapperConfig(
        architecture=architecture, num_labels=len(label_names), id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )  # fmt: skip
    config.pretrained_cfg = eval_pretrained_cfg(mean, std, image_shape, len(label_names))
    model = TimmWrapperForImageClassification(config)
    # transformers re-initialises convolutions with N(0, 0.02) and resets the zero-initialised last norms of the
    # residual blocks; timm's own initialisation is what these networks are trained from scratch with
    torch.manual_seed(seed)
    model.timm_model.load_state_dict(
        timm.create_model(architecture, pretrained=False, num_classes=len(label_names)).state_dict()
    )
    return model


def eval_pretrained_cfg(mean, std, image_shape, num_classes: int) -> dict[str, Any]:
    h, w = image_shape
    return {
        "input_size": [3, int(h), int(w)],
        "mean": list(mean),
        "std": list(std),
        "crop_pct": 1.0,
        "crop_mode": "center",
        "interpolation": "bilinear",
        "num_classes": num_classes,
    }


def image_classification_dataset(ds, image_column: str, labels: np.ndarray, mean, std, train: bool, size=None):
    """``ds`` as Trainer input: ``pixel_values`` (decoded on access, random crop + flip when ``train``) and
    ``labels``. Decoding happens in `datasets.Dataset.with_transform`, so nothing is materialised up front."""
    view = ds.select_columns([image_column]).add_column("labels", labels.tolist())

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        import torch

        x = torch.from_numpy(to_uint8(batch[image_column], size, image_column))
        if train:
            x = random_crop_flip(x)  # torch's global generator: seeded by the Trainer
        return {"pixel_values": normalise(x, mean, std), "labels": torch.as_tensor(batch["labels"])}

    return view.with_transform(transform)
