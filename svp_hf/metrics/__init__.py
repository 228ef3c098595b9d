"""`evaluate` metric modules shipped inside svp-hf, loadable offline: ``svp_hf.metrics.load("accuracy")``."""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).parent
AVAILABLE = ("accuracy", "macro_f1")


def metric_path(name: str) -> str:
    if name not in AVAILABLE:
        raise ValueError(f"unknown svp-hf metric {name!r}; available: {', '.join(AVAILABLE)}")
    return str(METRICS_DIR / name)


def load(name: str):
    """``evaluate.load`` of one of svp-hf's local metric modules (no network needed)."""
    import evaluate

    return evaluate.load(metric_path(name))
