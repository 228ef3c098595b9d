"""Models svp-hf brings to `transformers`. Importing this package registers them with the Auto classes:

    >>> import svp_hf.models
    >>> from transformers import AutoConfig, AutoModelForSequenceClassification
    >>> model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model("vdcnn", depth=9, num_labels=4))

(Importing `transformers`' model classes costs seconds, so plain ``import svp_hf`` does not do it.)
"""

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

__all__ = ["VDCNNConfig", "VDCNNForSequenceClassification", "VDCNNModel", "VDCNNTokenizer", "register_auto_classes"]
