"""VDCNN (Conneau et al., EACL 2017), the SVP paper's text target, as a `transformers` model."""

from .configuration_vdcnn import BLOCKS_PER_STAGE, VDCNNConfig
from .modeling_vdcnn import VDCNNForSequenceClassification, VDCNNModel, VDCNNPreTrainedModel
from .tokenization_vdcnn import ALPHABET, VDCNNTokenizer

__all__ = [
    "ALPHABET",
    "BLOCKS_PER_STAGE",
    "VDCNNConfig",
    "VDCNNForSequenceClassification",
    "VDCNNModel",
    "VDCNNPreTrainedModel",
    "VDCNNTokenizer",
]
