"""Proxies: cheap models that score a pool. Importing this package registers the built-in ones."""

from .base import PROXIES, Proxy, ProxyOutputs, build_proxy, check_proxy_modality, register_proxy
from .fasttext import FastTextProxy
from .precomputed import PrecomputedProxy
from .sklearn import TfidfProxy
from .timm import TimmProxy
from .transformer import TransformerProxy, VDCNNProxy

__all__ = [
    "PROXIES",
    "FastTextProxy",
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
