"""Proxies: cheap models that score a pool. Importing this package registers the built-in ones."""

from .base import PROXIES, Proxy, ProxyOutputs, build_proxy, register_proxy
from .fasttext import FastTextProxy
from .precomputed import PrecomputedProxy
from .sklearn import TfidfProxy
from .transformer import TransformerProxy, VDCNNProxy

__all__ = [
    "PROXIES",
    "FastTextProxy",
    "PrecomputedProxy",
    "Proxy",
    "ProxyOutputs",
    "TfidfProxy",
    "TransformerProxy",
    "VDCNNProxy",
    "build_proxy",
    "register_proxy",
]
