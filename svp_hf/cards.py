"""Dataset cards for selections, rendered from a Jinja template shipped inside the package.

Values that are unknown are left out, never printed as "None".
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from .selection import SelectionResult


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def render_dataset_card(result: SelectionResult) -> str:
    from jinja2 import Environment, StrictUndefined

    cfg = result.config.to_dict()
    source = result.source or {}
    source_name = source.get("dataset") or source.get("builder")
    metadata = {
        "tags": ["svp-hf", "selection-via-proxy", "data-selection", f"strategy-{cfg['strategy']}"],
        "task_categories": ["image-classification" if cfg.get("image_column") else "text-classification"],
        "size_categories": [_size_category(len(result.indices))],
    }
    if result.proxy is not None:
        metadata["tags"].insert(3, f"proxy-{cfg['proxy']}")
    counts = result.class_counts or {}
    class_rows = [
        (name, before, counts.get("selected", {}).get(name, 0)) for name, before in counts.get("pool", {}).items()
    ]
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(files("svp_hf").joinpath("templates/dataset_card.md").read_text())
    return template.render(
        metadata=yaml.safe_dump(metadata, sort_keys=False).strip(),
        title=f"{source_name.rstrip('/').split('/')[-1]} selected by {cfg['strategy']}"
        if source_name
        else "Selected rows",
        source_name=source_name,
        split=source.get("split"),
        num_selected=len(result.indices),
        pool_size=result.pool_size,
        num_labeled=result.num_labeled,
        proxy_used=result.proxy is not None,
        proxy=cfg["proxy"],
        proxy_hyperparameters=json.dumps(result.proxy.hyperparameters if result.proxy else {}),
        strategy=cfg["strategy"],
        strategy_kwargs=json.dumps(cfg["strategy_kwargs"]) if cfg["strategy_kwargs"] else "",
        budget=cfg["budget"],
        seed=cfg["seed"],
        num_empty=result.num_empty_text,
        timings=[(k, f"{v:.3f}") for k, v in result.timings.items()],
        direction="higher ranks first" if result.higher_is_better else "lower ranks first",
        class_rows=class_rows,
        command=result.command,
    )
