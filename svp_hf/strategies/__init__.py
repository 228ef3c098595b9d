"""Strategies: pick rows from proxy outputs. Importing this package registers the built-in ones."""

from .base import (
    ORDERS,
    STRATEGIES,
    OrderedStrategy,
    ScoreStrategy,
    Strategy,
    StrategyResult,
    argselect,
    build_strategy,
    register_strategy,
)
from .batch import ClusterMargin, MarginKMeans
from .clustering import kmeans
from .coldstart import TypiClust
from .forgetting import ForgettingEvents, forgetting_counts
from .kcenters import KCenters, greedy_k_centers
from .random import RandomStrategy
from .uncertainty import Entropy, LeastConfidence, Margin, entropy_scores, least_confidence_scores, margin_scores

__all__ = [
    "ORDERS",
    "STRATEGIES",
    "ClusterMargin",
    "Entropy",
    "ForgettingEvents",
    "KCenters",
    "LeastConfidence",
    "Margin",
    "MarginKMeans",
    "OrderedStrategy",
    "RandomStrategy",
    "ScoreStrategy",
    "Strategy",
    "StrategyResult",
    "TypiClust",
    "argselect",
    "build_strategy",
    "entropy_scores",
    "forgetting_counts",
    "greedy_k_centers",
    "kmeans",
    "least_confidence_scores",
    "margin_scores",
    "register_strategy",
]
