"""svp-hf: Selection via Proxy (Coleman et al., ICLR 2020) for the Hugging Face ecosystem.

>>> import svp_hf
>>> result = svp_hf.select(pool, svp_hf.SelectionConfig(proxy="fasttext", strategy="entropy", budget=0.1))
>>> result.save_to_disk("selected")
"""

__version__ = "0.1.0.dev0"

from . import models  # noqa: F401  (registers VDCNN with transformers' Auto classes when those load)
from .active import ActiveLearner, ActiveLearningConfig
from .config import SelectionConfig
from .coreset import coreset
from .data import ClassificationTask, ImageClassificationTask, TextClassificationTask, load_pool, resolve_budget
from .errors import (
    BudgetError,
    ColumnNotFoundError,
    ColumnTypeError,
    ConfigError,
    DataFileError,
    DatasetNotFoundError,
    DatasetTypeError,
    DistributedError,
    EmptyPoolError,
    HubError,
    LabelError,
    MissingDependencyError,
    NotFittedError,
    OutputExistsError,
    PoolExhaustedError,
    ProxyError,
    RegistryError,
    SplitNotFoundError,
    SvpError,
)
from .proxies import PROXIES, Proxy, ProxyOutputs, build_proxy, register_proxy
from .selection import SelectionResult, select
from .strategies import (
    STRATEGIES,
    ScoreStrategy,
    Strategy,
    StrategyResult,
    argselect,
    build_strategy,
    register_strategy,
)

__all__ = [
    "ActiveLearner",
    "ActiveLearningConfig",
    "coreset",
    "PROXIES",
    "STRATEGIES",
    "BudgetError",
    "ClassificationTask",
    "ColumnNotFoundError",
    "ColumnTypeError",
    "ConfigError",
    "DataFileError",
    "DatasetNotFoundError",
    "DatasetTypeError",
    "DistributedError",
    "EmptyPoolError",
    "HubError",
    "ImageClassificationTask",
    "LabelError",
    "MissingDependencyError",
    "NotFittedError",
    "OutputExistsError",
    "PoolExhaustedError",
    "Proxy",
    "ProxyError",
    "ProxyOutputs",
    "RegistryError",
    "ScoreStrategy",
    "SelectionConfig",
    "SelectionResult",
    "SplitNotFoundError",
    "Strategy",
    "StrategyResult",
    "SvpError",
    "TextClassificationTask",
    "__version__",
    "argselect",
    "build_proxy",
    "build_strategy",
    "load_pool",
    "register_proxy",
    "register_strategy",
    "resolve_budget",
    "select",
]
