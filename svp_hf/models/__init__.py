"""Models svp-hf brings to `transformers`, registered with the Auto classes.

``import svp_hf`` is enough: VDCNN is registered with `AutoConfig`, `AutoModel`, `AutoModelForSequenceClassification`
and `AutoTokenizer` as soon as `transformers` loads them (see `_auto_hook`; importing `transformers`' model classes
costs seconds, so svp-hf does not do it eagerly)::

    >>> import svp_hf
    >>> from transformers import AutoConfig, AutoModelForSequenceClassification
    >>> model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model("vdcnn", depth=9, num_labels=4))

The classes themselves are importable from here (loaded on first access).

`cifar_resnet` holds the CIFAR pre-activation ResNets (``cifar_preact_resnet20/56/110/164``); they are registered
with timm when svp-hf's image code first imports timm, or by ``import svp_hf.models.cifar_resnet`` (needed before
loading a saved CIFAR-ResNet target with plain `transformers`).
"""

from __future__ import annotations

import importlib

from . import _auto_hook

_auto_hook.install()

_LAZY = {
    "VDCNNConfig": ".vdcnn.configuration_vdcnn",
    "VDCNNModel": ".vdcnn.modeling_vdcnn",
    "VDCNNForSequenceClassification": ".vdcnn.modeling_vdcnn",
    "VDCNNPreTrainedModel": ".vdcnn.modeling_vdcnn",
    "VDCNNTokenizer": ".vdcnn.tokenization_vdcnn",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_auto_classes() -> None:
    """Import `transformers`' Auto classes now and register VDCNN with them (idempotent; normally not needed)."""
    import transformers.modeling_utils  # noqa: F401
    import transformers.models.auto.configuration_auto  # noqa: F401
    import transformers.models.auto.modeling_auto  # noqa: F401
    import transformers.models.auto.tokenization_auto  # noqa: F401

    _auto_hook.register_ready(strict=True)


__all__ = [
    "VDCNNConfig",
    "VDCNNForSequenceClassification",
    "VDCNNModel",
    "VDCNNPreTrainedModel",
    "VDCNNTokenizer",
    "register_auto_classes",
]
