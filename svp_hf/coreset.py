"""Core-set selection / pruning: train the proxy on every labeled row, rank all of them, keep the best."""

from __future__ import annotations

from typing import Any

from .config import SelectionConfig
from .selection import SelectionResult, select


def coreset(
    pool, keep: float | int | str = 0.5, config: SelectionConfig | None = None, **overrides: Any
) -> SelectionResult:
    """Keep ``keep`` rows of a fully labeled ``pool`` (a fraction or a count), ranked by the strategy.

    The proxy is trained on every row (recording what the strategy needs: forgetting events are counted while
    it trains), then the strategy ranks every row; the kept rows come back as in `select`, most valuable first.

    Example:
        ```python
        >>> kept = svp_hf.coreset(pool, keep=0.5, proxy="fasttext", strategy="forgetting_events")
        >>> kept.dataset  # train the target on this
        ```
    """
    return select(pool, config, budget=keep, **overrides)
