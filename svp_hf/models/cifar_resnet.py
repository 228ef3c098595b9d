"""Pre-activation ResNets for 32x32 inputs (He et al., "Identity Mappings in Deep Residual Networks", 2016): the
paper's CIFAR-10 proxy (ResNet20) and target (ResNet164), registered with timm so that they work wherever a timm name
does (``--proxy-kwargs '{"model_name": "cifar_preact_resnet20"}'``, ``--model timm/cifar_preact_resnet164``, and
transformers' `TimmWrapperForImageClassification` once this module is imported).

timm's own ResNets start with a stride-2 7x7 convolution and a max-pool, built for 224-pixel images: on 32x32 inputs
the last stage sees 1x1 maps. These keep CIFAR's layout: a 3x3 stem at full resolution, three stages of 16/32/64
channels (x4 with bottlenecks) at 32, 16 and 8 pixels. Depth 6n+2 uses basic blocks (20, 56, 110), 9n+2 bottlenecks
(164). Written from the paper's description.
"""

from __future__ import annotations

import torch
from timm.models import register_model
from torch import nn


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int):
        super().__init__()
        out_ch = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False) if stride != 1 or in_ch != out_ch else None

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x  # projection of the pre-activated input
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class PreActBottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int):
        super().__init__()
        out_ch = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False) if stride != 1 or in_ch != out_ch else None

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        out = self.conv3(torch.relu(self.bn3(out)))
        return out + shortcut


class CifarPreActResNet(nn.Module):
    """A CIFAR pre-activation ResNet with timm's model interface (``forward_features``, ``forward_head(x,
    pre_logits=...)``, ``num_features``, ``get_classifier``, ``reset_classifier``)."""

    def __init__(self, depth: int = 20, bottleneck: bool = False, num_classes: int = 10, in_chans: int = 3, **kwargs):
        super().__init__()
        block, per = (PreActBottleneck, 9) if bottleneck else (PreActBlock, 6)
        if (depth - 2) % per:
            raise ValueError(f"a CIFAR pre-activation ResNet has depth 6n+2 (basic) or 9n+2 (bottleneck), got {depth}")
        n = (depth - 2) // per
        self.depth, self.num_classes = depth, num_classes
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        layers, in_ch = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(n):
                layers.append(block(in_ch, width, 2 if stage > 0 and i == 0 else 1))
                in_ch = width * block.expansion
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(in_ch)
        self.num_features = self.head_hidden_size = in_ch
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes) if num_classes else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        return torch.relu(self.bn(self.layers(self.conv1(x))))

    def forward_head(self, x, pre_logits: bool = False):
        x = self.global_pool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()


def _create(depth: int, pretrained: bool = False, bottleneck: bool = False, **kwargs) -> CifarPreActResNet:
    if pretrained:
        raise ValueError("svp-hf's CIFAR ResNets have no pretrained weights; train them or pass a local checkpoint")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    model = CifarPreActResNet(depth, bottleneck, **kwargs)
    model.pretrained_cfg = model.default_cfg = {
        "architecture": f"cifar_preact_resnet{depth}",
        "input_size": (3, 32, 32),
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "num_classes": model.num_classes,
        "classifier": "fc",
    }
    return model


@register_model
def cifar_preact_resnet20(pretrained: bool = False, **kwargs) -> CifarPreActResNet:
    """Pre-activation ResNet-20 for 32x32 images (0.27M parameters): the paper's CIFAR-10 proxy."""
    return _create(20, pretrained, **kwargs)


@register_model
def cifar_preact_resnet56(pretrained: bool = False, **kwargs) -> CifarPreActResNet:
    """Pre-activation ResNet-56 for 32x32 images (0.86M parameters)."""
    return _create(56, pretrained, **kwargs)


@register_model
def cifar_preact_resnet110(pretrained: bool = False, **kwargs) -> CifarPreActResNet:
    """Pre-activation ResNet-110 for 32x32 images (1.7M parameters)."""
    return _create(110, pretrained, **kwargs)


@register_model
def cifar_preact_resnet164(pretrained: bool = False, **kwargs) -> CifarPreActResNet:
    """Pre-activation ResNet-164 (bottleneck blocks) for 32x32 images (1.7M parameters): the paper's CIFAR-10
    target."""
    return _create(164, pretrained, bottleneck=True, **kwargs)
