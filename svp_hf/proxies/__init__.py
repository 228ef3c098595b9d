"""Proxies: cheap models that score a pool. Importing this package registers the built-in ones."""

from .auto import AutoProxy
from .base import PROXIES, Proxy, ProxyOutputs, build_proxy, check_proxy_modality, register_proxy
from .fasttext import FastTextProxy
from .linear import EmbeddingProxy, HybridProxy, LinearHeadProxy, TfidfProxy
from .precomputed import PrecomputedProxy
from .timm import TimmProxy
from .transformer import TransformerProxy, VDCNNProxy

__all__ = [
    "AutoProxy",
    "PROXIES",
    "EmbeddingProxy",
    "FastTextProxy",
    "HybridProxy",
    "LinearHeadProxy",
    "PrecomputedProxy",
    "Proxy",
    "ProxyOutputs",
    "TfidfProxy",
    "TimmProxy",
    "TransformerProxy",
    "VDCNNProxy",
    "build_proxy",
    "check_proxy_modality",
    "register_proxy",
]
