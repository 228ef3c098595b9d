"""Dataset cards for selections, rendered from a Jinja template shipped inside the package.

A card is rendered from the selection's record (``selection_config.json``), so a saved folder can be carded again
later (``svp-hf push``) without the objects that produced it. Values that are unknown are left out, never printed
as "None".
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .selection import SelectionResult

CITATION = """@inproceedings{coleman2020selection,
  title     = {Selection via Proxy: Efficient Data Selection for Deep Learning},
  author    = {Coleman, Cody and Yeh, Christopher and Mussmann, Stephen and Mirzasoleiman, Baharan and
               Bailis, Peter and Liang, Percy and Leskovec, Jure and Zaharia, Matei},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2020},
  url       = {https://arxiv.org/abs/1906.11829}
}"""


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def describe_self_check(check: dict) -> str:
    """One line about a proxy's self-check: ``72.4% (3-fold cross-validation on 200 labeled rows; majority 4.0%)``."""
    text = (
        f"{100 * check['accuracy']:.1f}% ({check['method']} on {check['rows']} labeled rows; "
        f"majority class {100 * check['majority_accuracy']:.1f}%)"
    )
    return text + (" - near chance: the selection is close to random" if check.get("near_chance") else "")


def card_metadata(selection: dict[str, Any], data_files: str | None = None) -> dict[str, Any]:
    """The card's YAML metadata: tags (``svp-hf``, ``strategy:<name>``, ``proxy:<name>``), task, size and, for an
    upload, ``configs`` pointing the Hub at the data files (e.g. ``data/train-*``)."""
    cfg = selection.get("config", {})
    tags = ["svp-hf", "selection-via-proxy", "data-selection", f"strategy:{cfg.get('strategy')}"]
    if selection.get("proxy_used"):
        tags.append(f"proxy:{cfg.get('proxy')}")
    metadata: dict[str, Any] = {
        "tags": tags,
        "task_categories": ["image-classification" if cfg.get("image_column") else "text-classification"],
        "size_categories": [_size_category(int(selection.get("num_selected") or 0))],
    }
    if data_files:
        metadata["configs"] = [{"config_name": "default", "data_files": [{"split": "train", "path": data_files}]}]
    return metadata


def render_dataset_card(selection: SelectionResult | dict[str, Any], data_files: str | None = None) -> str:
    """The dataset card (``README.md``) of a selection: a `SelectionResult` or its ``selection_config.json`` dict."""
    from jinja2 import Environment, StrictUndefined

    if not isinstance(selection, dict):
        selection = selection.selection_config()
    cfg = selection.get("config", {})
    source = selection.get("source") or {}
    source_name = source.get("dataset") or source.get("builder")
    counts = selection.get("class_counts") or {}
    after_key = "selected" if "selected" in counts else "labeled"
    after = counts.get(after_key, {})
    before = counts.get("pool", {})
    class_rows = [(name, before.get(name, "–"), after.get(name, 0)) for name in before or after]
    num_selected = int(selection.get("num_selected") or 0)
    pool_size = int(selection.get("pool_size") or 0)
    timings = selection.get("timings_s") or {}
    accuracy = selection.get("proxy_eval_accuracy")
    check = selection.get("proxy_self_check") or {}
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(files("svp_hf").joinpath("templates/dataset_card.md").read_text())
    return template.render(
        metadata=yaml.safe_dump(card_metadata(selection, data_files), sort_keys=False).strip(),
        title=f"{source_name.rstrip('/').split('/')[-1]} selected by {cfg.get('strategy')}"
        if source_name
        else "Selected rows",
        source_name=source_name,
        split=source.get("split"),
        num_selected=num_selected,
        pool_size=pool_size,
        percent=f"{100 * num_selected / pool_size:.1f}" if pool_size else None,
        num_labeled=selection.get("num_labeled") or 0,
        proxy_used=bool(selection.get("proxy_used")),
        proxy=cfg.get("proxy"),
        proxy_hyperparameters=json.dumps(selection.get("proxy_hyperparameters") or {}),
        proxy_accuracy=f"{accuracy:.4f}" if isinstance(accuracy, (int, float)) else None,
        accuracy_split=selection.get("proxy_eval_split"),
        self_check=describe_self_check(check) if check.get("accuracy") is not None else None,
        strategy=cfg.get("strategy"),
        strategy_kwargs=json.dumps(cfg["strategy_kwargs"]) if cfg.get("strategy_kwargs") else "",
        budget=cfg.get("budget"),
        seed=cfg.get("seed"),
        num_empty=selection.get("num_empty_text_skipped") or 0,
        num_processes=selection.get("num_processes") or 1,
        rounds=selection.get("rounds"),
        timings=[(k, f"{v:.3f}") for k, v in timings.items() if isinstance(v, (int, float))],
        direction="higher ranks first" if selection.get("higher_score_is_better", True) else "lower ranks first",
        class_rows=class_rows,
        after_label=after_key,
        command=selection.get("command"),
        citation=CITATION,
        versions=selection.get("versions") or {},
    )
