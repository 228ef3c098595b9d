"""What the recipes share: ``--config FILE.yaml`` whose keys become the parser's defaults (flags given on the command
line win), and small helpers for the run summary. Recipes run as scripts (``python recipes/x.py``,
``accelerate launch recipes/x.py``) from the repository root."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import yaml


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` with ``parser``; ``--config FILE.yaml`` keys (flag names, ``-`` or ``_``) become defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config:
        values = yaml.safe_load(Path(known.config).read_text()) or {}
        dests = {a.dest for a in parser._actions}
        unknown = sorted(k for k in values if str(k).replace("-", "_") not in dests)
        if unknown:
            parser.error(f"unknown key(s) {unknown} in {known.config}")
        parser.set_defaults(**{str(k).replace("-", "_"): v for k, v in values.items()})
    parser.add_argument("--config", help="YAML file whose keys are flag names; command-line flags win")
    return parser.parse_args(argv)


def json_object(value: str) -> dict[str, Any]:
    """argparse type for mapping flags (``--proxy-kwargs '{"epochs": 5}'``); YAML gives mappings directly."""
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r}")
    return parsed


def is_main() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def report(path: str | os.PathLike, summary: dict[str, Any]) -> None:
    """Print the recipe's summary (main process) and write it to ``path`` as JSON."""
    if not is_main():
        return
    from svp_hf.io import write_json_atomic

    write_json_atomic(path, summary)
    print(json.dumps(summary, indent=2))
