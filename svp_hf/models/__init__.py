"""Models svp-hf brings to `transformers` and timm. Importing this package registers VDCNN with the Auto classes and
the CIFAR pre-activation ResNets (``cifar_preact_resnet20/56/110/164``) with timm:

    >>> import svp_hf.models
    >>> import contextlib

from transformers import AutoConfig, AutoModelForSequenceClassification
    >>> model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model("vdcnn", depth=9, num_labels=4))

(Importing `transformers`' model classes costs seconds, so plain ``import svp_hf`` does not do it.)
"""

import contextlib

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from .vdcnn import VDCNNConfig, VDCNNForSequenceClassification, VDCNNModel, VDCNNTokenizer


def register_auto_classes() -> None:
    """Register VDCNN with AutoConfig, AutoModel, AutoModelForSequenceClassification and AutoTokenizer
    (idempotent)."""
    AutoConfig.register("vdcnn", VDCNNConfig, exist_ok=True)
    AutoModel.register(VDCNNConfig, VDCNNModel, exist_ok=True)
    AutoModelForSequenceClassification.register(VDCNNConfig, VDCNNForSequenceClassification, exist_ok=True)
    AutoTokenizer.register(VDCNNConfig, slow_tokenizer_class=VDCNNTokenizer, exist_ok=True)


register_auto_classes()

with contextlib.suppress(ImportError):  # timm is optional (svp-hf[vision]): without it, text models still import
    from . import cifar_resnet  # noqa: F401  (registers cifar_preact_resnet20/56/110/164 with timm)

__all__ = ["VDCNNConfig", "VDCNNForSequenceClassification", "VDCNNModel", "VDCNNTokenizer", "register_auto_classes"]
