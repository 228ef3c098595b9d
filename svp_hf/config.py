"""Settings of a selection, usable from Python, YAML and the command line alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .data import check_budget
from .errors import ConfigError
from .proxies import PROXIES, Proxy, check_proxy_modality
from .strategies import STRATEGIES, Strategy


@dataclass
class SelectionConfig:
    """How to select rows from a pool.

    Args:
        proxy (`str` or `Proxy`, defaults to `"fasttext"`):
            A registered proxy name (``svp_hf.PROXIES.names()``) or a `Proxy` instance (fitted or not: it is fitted
            on the labeled rows either way).
        strategy (`str` or `Strategy`, defaults to `"entropy"`):
            A registered strategy name (``svp_hf.STRATEGIES.names()``) or a `Strategy` instance.
        budget (`float`, `int` or `str`, defaults to `0.1`):
            How many rows to select: a float in (0, 1] is a fraction of the whole pool (rounded half up), an int
            a number of rows; strings like ``"0.1"``, ``"300"`` or ``"10%"`` are parsed.
        seed (`int`, defaults to `0`):
            Seeds the proxy's training and the strategy's random tie-breaking: the same seed, pool and settings
            give the same rows in the same order.
        text_column (`str`, defaults to `"text"`), label_column (`str`, defaults to `"label"`):
            Columns with the inputs and the labels.
        image_column (`str`, *optional*):
            The column of images (a `datasets.Image` feature) for image classification; ``text_column`` is then
            ignored. Needs an image proxy (``timm``).
        proxy_kwargs (`dict`), strategy_kwargs (`dict`):
            Hyperparameters of a named proxy / strategy (unknown keys raise and list the valid ones).
        batch_size (`int`, defaults to `8192`):
            Rows per Arrow batch when scoring.
        progress (`bool`, defaults to `False`):
            Show tqdm progress bars while scoring.
    """

    proxy: str | Proxy = "fasttext"
    strategy: str | Strategy = "entropy"
    budget: float | int | str = 0.1
    seed: int = 0
    text_column: str = "text"
    label_column: str = "label"
    image_column: str | None = None
    proxy_kwargs: dict[str, Any] = field(default_factory=dict)
    strategy_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8192
    progress: bool = False

    def __post_init__(self):
        if isinstance(self.proxy, str):
            PROXIES.get(self.proxy)  # fail early on unknown names, with suggestions
        elif not isinstance(self.proxy, Proxy):
            raise ConfigError(f"proxy must be a name or a Proxy instance, got {type(self.proxy).__name__}")
        if isinstance(self.strategy, str):
            STRATEGIES.get(self.strategy)
        elif not isinstance(self.strategy, Strategy):
            raise ConfigError(f"strategy must be a name or a Strategy instance, got {type(self.strategy).__name__}")
        self.budget = check_budget(self.budget)  # the pool-size checks come in select()
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("proxy_kwargs", "strategy_kwargs"):
            value = getattr(self, name)
            if value is None:
                setattr(self, name, {})
            elif not isinstance(value, dict):
                raise ConfigError(f"{name} must be a mapping of hyperparameters, got {type(value).__name__}")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.image_column is not None and (not isinstance(self.image_column, str) or not self.image_column):
            raise ConfigError(f"image_column must be a column name, got {self.image_column!r}")
        strategy_cls = STRATEGIES.get(self.strategy) if isinstance(self.strategy, str) else type(self.strategy)
        if strategy_cls.requires:  # random selection trains no proxy, so any proxy name goes with it
            check_proxy_modality(self.proxy, self.modality)

    @property
    def modality(self) -> str:
        """``"image"`` when ``image_column`` is set, else ``"text"``."""
        return "image" if self.image_column else "text"

    @property
    def input_column(self) -> str:
        return self.image_column or self.text_column

    @property
    def proxy_name(self) -> str:
        return self.proxy if isinstance(self.proxy, str) else self.proxy.name

    @property
    def strategy_name(self) -> str:
        return self.strategy if isinstance(self.strategy, str) else self.strategy.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (instances are recorded by name and hyperparameters)."""
        proxy_kwargs = self.proxy_kwargs if isinstance(self.proxy, str) else self.proxy.hyperparameters
        strategy_kwargs = self.strategy_kwargs if isinstance(self.strategy, str) else self.strategy.kwargs
        return {
            "proxy": self.proxy_name,
            "proxy_kwargs": dict(proxy_kwargs),
            "strategy": self.strategy_name,
            "strategy_kwargs": dict(strategy_kwargs),
            "budget": self.budget,
            "seed": self.seed,
            "text_column": self.text_column,
            "label_column": self.label_column,
            **({"image_column": self.image_column} if self.image_column else {}),
            "batch_size": self.batch_size,
        }
