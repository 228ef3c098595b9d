"""The ``svp-hf`` command line (also ``python -m svp_hf``).

    svp-hf select --dataset ../shared/data/ag_news --split train --proxy fasttext --strategy entropy \\
        --budget 0.1 --seed 0 --output-dir out/ag_news_entropy
    svp-hf select --config select.yaml --budget 0.2          # flags given on the command line win

Failures exit non-zero with one line on stderr (``--debug`` shows the traceback) and leave no output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ConfigError, SvpError
from .head_init import PROBE_BELOW_ROWS_SEEN
from .io import check_output_path, source_id

logger = logging.getLogger("svp_hf")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus a pointer to --help), not the whole usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _json_arg(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err.msg}): {value!r}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"epochs\": 5}}', got {value!r}")
    return parsed


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("common")
    g.add_argument("--config", metavar="FILE.yaml", help="YAML file whose keys are flag names; command-line flags win")
    g.add_argument("--proxy-kwargs", type=_json_arg, default={}, metavar="JSON", help="proxy hyperparameters")
    g.add_argument("--strategy-kwargs", type=_json_arg, default={}, metavar="JSON", help="strategy hyperparameters")
    g.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    g.add_argument("--verbose", action="store_true", help="log each step on stderr")
    g.add_argument("--quiet", action="store_true", help="no progress bars; only the result, warnings and errors")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="svp-hf", description="Selection via Proxy for Hugging Face datasets.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("select", help="select rows of a pool with a proxy and a strategy")
    _add_data_args(p)
    selection = _add_selection_args(
        p,
        "selection",
        amount=("--budget", "0.1 (a fraction of the pool), 10%%, or 300 (rows)"),
    )
    selection.add_argument(
        "--labeled-indices",
        metavar="FILE",
        help="pool rows already labeled (JSON list or whitespace-separated integers); the proxy trains on them "
        "and the strategy picks among the rest. Without it the proxy trains on every row (core-set mode)",
    )
    p.set_defaults(func=run_select, required=("dataset", "strategy", "budget", "output_dir"))

    p = sub.add_parser("coreset", help="core-set selection / pruning: rank every labeled row and keep the best")
    _add_data_args(p)
    _add_selection_args(
        p,
        "core-set",
        amount=("--keep", "rows to keep: 0.5 (a fraction), 50%%, or a count"),
    )
    p.set_defaults(func=run_coreset, required=("dataset", "strategy", "keep", "output_dir"))

    p = sub.add_parser(
        "train",
        help="train the target model on a selected folder or any dataset",
        description="Other flags are transformers.TrainingArguments fields, spelt out in full, e.g. "
        "--num_train_epochs 3 --learning_rate 0.01 --per_device_train_batch_size 64 --seed 0; --save_steps N "
        "(eval, logging) alone switches to saving every N steps.",
        allow_abbrev=False,  # an abbreviated flag is an error, never silently some other flag
    )
    _add_data_args(p)
    g = p.add_argument_group("target")
    g.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help="vdcnn-9|vdcnn-17|vdcnn-29|vdcnn-49, bert-tiny|bert-mini|bert-small|bert-medium|bert-base (built from a "
        "config), minilm (the pretrained all-MiniLM-L6-v2, offline, from svp-hf[minilm]), timm/ARCH (any timm "
        "architecture, random weights; images, with --image-column), or a local path / Hub id of a pretrained "
        "sequence- or image-classification model",
    )
    g.add_argument("--eval-dataset", metavar="PATH_OR_HUB_ID", help="default: the training dataset's source")
    g.add_argument("--eval-split", default="test", help="split of the eval dataset (default: test)")
    g.add_argument("--max-length", type=_positive_int, help="tokens (characters for VDCNN) per input")
    g.add_argument(
        "--head-init",
        choices=("auto", "probe", "random"),
        help="the new output layer's start: probe (a linear probe on the frozen encoder), random, or auto (default: "
        "probe a pretrained text model's head when the fine-tune shows each class under "
        f"{PROBE_BELOW_ROWS_SEEN} rows)",
    )
    g.add_argument(
        "--image-size", type=_positive_int, help="images: resize the shorter side to N, then centre-crop N x N"
    )
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", metavar="DIR", help="model, tokenizer, metrics and model card (must not exist)")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --output-dir if it exists, and discard checkpoints of a different run in OUTPUT_DIR.partial",
    )
    _add_common(p)
    p.set_defaults(func=run_train, required=("dataset", "model", "output_dir"), accepts_extra=True)

    p = sub.add_parser(
        "push",
        help="upload a selection folder to the Hugging Face Hub (or write what would be uploaded)",
        description="Uploads DIR (a select / coreset output, or an active-learning folder) to the dataset repository "
        "REPO_ID: the rows as Parquet under data/, README.md (a dataset card) and selection_config.json.",
    )
    p.add_argument("dir", metavar="DIR", help="a folder written by svp-hf select, coreset or active-learn")
    p.add_argument("repo_id", metavar="REPO_ID", help="dataset repository, e.g. some-user/agnews-svp")
    p.add_argument("--local-dir", metavar="OUT", help="write exactly what would be uploaded to OUT; upload nothing")
    p.add_argument("--private", action="store_true", default=None, help="create the repository as private")
    p.add_argument("--revision", help="branch to upload to (default: main)")
    p.add_argument("--overwrite", action="store_true", help="replace --local-dir if it exists")
    _add_common(p)
    p.set_defaults(func=run_push, required=("dir", "repo_id"))

    p = sub.add_parser("active-learn", help="active learning via proxy, in resumable rounds")
    _add_data_args(p)
    g = p.add_argument_group("active learning")
    g.add_argument("--proxy", default="hybrid", metavar="NAME", help=f"{_names('proxies')} (default: hybrid)")
    g.add_argument("--strategy", default="cluster_margin", metavar="NAME", help=f"{_names('strategies')} (default: "
                   "cluster_margin)")  # fmt: skip
    g.add_argument("--initial", default="0.02", metavar="FRACTION_OR_COUNT", help="initial labeled set (default 0.02)")
    g.add_argument(
        "--initial-strategy",
        default="random",
        metavar="NAME",
        help="how the initial set is drawn: random (default), or typiclust / kcenters on the proxy's label-free "
        "embeddings (tfidf, embedding proxies)",
    )
    g.add_argument(
        "--budgets", default="0.1,0.2,0.3,0.4,0.5", help="labeled-set sizes to grow to (default: the paper's)"
    )
    g.add_argument(
        "--batch-size",
        default="auto",
        metavar="FRACTION_OR_COUNT",
        help="most rows per query: a fraction, a count, 'auto' (the initial set's size; default) or 'none' "
        "(one query per budget step, as in the paper)",
    )
    g.add_argument("--stratified", action="store_true", help="stratified random initial set")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g.add_argument("--eval-split", metavar="SPLIT", help="report the proxy's accuracy on this split every round")
    g.add_argument(
        "--oracle",
        choices=("simulate", "human", "label-studio"),
        default="simulate",
        help="simulate: labels from --label-column; human: write queries to DIR/pending and stop; label-studio: "
        "import each query into a Label Studio project and stop, a rerun collects the annotations",
    )
    g.add_argument(
        "--label-studio-url",
        metavar="URL",
        help="the Label Studio server of --oracle label-studio (e.g. http://localhost:8080); the API key is read "
        "from LABEL_STUDIO_API_KEY",
    )
    g.add_argument(
        "--labels",
        metavar="FILE",
        help="the answer to the pending round (human oracle): the filled label file, or a Label Studio JSON export",
    )
    g.add_argument(
        "--accept-partial",
        action="store_true",
        help="with --labels (or --oracle label-studio): commit the labeled rows and return the unlabeled ones to the "
        "pool",
    )
    g.add_argument("--label-names", metavar="A,B,...", help="the classes, when the pool has no label column")
    g.add_argument("--max-rounds", type=int, help="stop after this many rounds (rerun to continue)")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", metavar="DIR", help="state folder; rerunning on it resumes")
    g.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the labeled rows with a card when the run ends")
    _add_common(p)
    p.set_defaults(func=run_active_learn, required=("dataset", "output_dir"))

    p = sub.add_parser(
        "export-label-studio",
        help="write the pending round (or a selection) as Label Studio tasks",
        description="Writes the pending round of an active-learning folder (or the rows of a selection folder) as "
        "Label Studio JSON tasks, each with svp_pool_index, svp_round and the proxy's prediction as a pre-annotation, "
        "and the labeling config beside it (FILE.xml).",
    )
    p.add_argument("dir", metavar="DIR", help="an active-learning folder (--oracle human) or a selection folder")
    p.add_argument("--output", metavar="FILE.json", help="the tasks to import into Label Studio")
    p.add_argument("--label-names", metavar="A,B,...", help="the classes, for a selection without a ClassLabel column")
    p.add_argument(
        "--image-url-prefix",
        default="/data/local-files/?d=",
        metavar="PREFIX",
        help="image pools: put before each PNG's path under DIR/pending (default: Label Studio's local files, with "
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=DIR/pending)",
    )
    _add_common(p)
    p.set_defaults(func=run_export_label_studio, required=("dir", "output"))

    p = sub.add_parser(
        "import-label-studio",
        help="commit the pending round from a Label Studio JSON export",
        description="Reads a Label Studio JSON export of the pending round of DIR, decides each task (a ground-truth "
        "annotation, else the majority; a tie is an error naming the task), checks it like a label file and commits "
        "the round. Rerun svp-hf active-learn on DIR afterwards for the next query.",
    )
    p.add_argument("dir", metavar="DIR", help="the active-learning folder whose round is pending")
    p.add_argument("export", metavar="FILE.json", help="Label Studio's Export > JSON of the round's tasks")
    p.add_argument(
        "--accept-partial", action="store_true", help="commit the annotated tasks; return the others to the pool"
    )
    p.add_argument("--dataset", metavar="PATH_OR_ID", help="the pool, when DIR does not record it (Python runs)")
    p.add_argument("--split", metavar="SPLIT", help="the pool's split, with --dataset")
    _add_common(p)
    p.set_defaults(func=run_import_label_studio, required=("dir", "export"))
    return parser


def _self_check_line(check: dict | None) -> str:
    """The summary's line about the proxy's self-check, or nothing when there was none."""
    from .cards import describe_self_check

    return f"Proxy self-check: {describe_self_check(check)}\n" if check and check.get("accuracy") is not None else ""


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _names(kind: str) -> str:
    """The registered proxy or strategy names, for help texts."""
    from .proxies import PROXIES
    from .strategies import STRATEGIES

    return ", ".join((PROXIES if kind == "proxies" else STRATEGIES).names())


def _add_selection_args(p: argparse.ArgumentParser, title: str, amount: tuple[str, str]):
    """The flags `select` and `coreset` share: proxy, strategy, how many rows, seed, output. Returns the group
    of selection flags, for a command's own additions."""
    group = g = p.add_argument_group(title)
    g.add_argument("--proxy", default="fasttext", metavar="NAME", help=f"{_names('proxies')} (default: fasttext)")
    g.add_argument("--strategy", metavar="NAME", help=f"strategy name: {_names('strategies')}")
    g.add_argument(amount[0], metavar="FRACTION_OR_COUNT", help=amount[1])
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g.add_argument("--batch-size", type=int, default=8192, help="rows per scoring batch (default: 8192)")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", metavar="DIR", help="where the rows are written (must not exist)")
    g.add_argument("--overwrite", action="store_true", help="replace --output-dir if it exists")
    g.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the result (svp-hf push DIR REPO_ID)")
    _add_common(p)
    return group


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", metavar="PATH_OR_HUB_ID", help="Hub id, folder of parquet/csv/jsonl, or save_to_disk")
    g.add_argument("--split", default="train", help="split, with slicing: train, train[:2000] (default: train)")
    g.add_argument("--text-column", default="text", metavar="NAME", help="column with the text (default: text)")
    g.add_argument("--label-column", default="label", metavar="NAME", help="column with the labels (default: label)")
    g.add_argument(
        "--image-column",
        metavar="NAME",
        help="column with images (a datasets.Image feature) for image classification; replaces --text-column and "
        "needs an image proxy (--proxy timm) or target (--model timm/NAME)",
    )


def _apply_config_file(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Load ``--config FILE.yaml`` and make its keys the subcommand's defaults (flags on the command line win)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("command", nargs="?")
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if not known.config:
        return
    import yaml

    path = Path(known.config)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must be a mapping of flag names to values")
    sub = _subparser(parser, known.command)
    dests = {a.dest for a in sub._actions} - {"help", "config"}
    defaults = {}
    for key, value in values.items():
        dest = str(key).lstrip("-").replace("-", "_")
        if dest not in dests:
            raise ConfigError(f"unknown key {key!r} in {path}; valid keys: {', '.join(sorted(dests))}")
        if dest in ("proxy_kwargs", "strategy_kwargs") and isinstance(value, str):
            value = _json_arg(value)
        defaults[dest] = value
    sub.set_defaults(**defaults)


def _subparser(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    raise ConfigError("--config needs a command first, e.g. svp-hf select --config FILE.yaml")


def _drop_library_errors(record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.ERROR and record.name.split(".")[0] in ("datasets", "fsspec"))


def _setup_logging(args: argparse.Namespace) -> bool:
    """Configure logs; returns whether to show progress bars (only on an interactive terminal)."""
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="svp-hf: %(message)s", stream=sys.stderr, force=True)
    for noisy in ("datasets", "fsspec", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.WARNING)
    if not args.debug:  # a library's error log precedes the exception that becomes the one line of a failure
        import datasets  # noqa: F401  (sets up its own log handler, which gets the filter too)

        for handler in [*logging.getLogger().handlers, *logging.getLogger("datasets").handlers]:
            handler.addFilter(_drop_library_errors)
    progress = sys.stderr.isatty() and not args.quiet
    if not progress:  # a failure in a pipe or a CI log then reads as exactly one line
        import datasets

        datasets.disable_progress_bars()
    return progress


def _read_indices(path: str) -> list[int]:
    """Pool rows from a JSON list or whitespace-separated integers; anything else (2.5, true, "3") is refused, as the
    Python API refuses it, rather than coerced."""
    text = Path(path).read_text()
    expected = f"--labeled-indices {path}: expected a JSON list or whitespace-separated integers"
    try:
        values = json.loads(text) if text.lstrip().startswith("[") else [int(t) for t in text.split()]
    except (ValueError, json.JSONDecodeError) as err:
        raise ConfigError(expected) from err
    if not isinstance(values, list):
        raise ConfigError(expected)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int)]
    if bad:
        raise ConfigError(f"{expected}, got {bad[:3]} (row numbers are whole numbers, e.g. 0, 17)")
    return values


def run_select(args: argparse.Namespace) -> int:
    import numpy as np

    from .config import SelectionConfig
    from .data import load_pool
    from .distributed import current, is_main_process
    from .selection import select

    config = SelectionConfig(
        proxy=args.proxy,
        strategy=args.strategy,
        budget=args.budget,
        seed=args.seed,
        text_column=args.text_column,
        label_column=args.label_column,
        image_column=args.image_column,
        proxy_kwargs=args.proxy_kwargs,
        strategy_kwargs=args.strategy_kwargs,
        batch_size=args.batch_size,
        progress=args.progress,
    )
    output = Path(args.output_dir)
    check_output_path(output, overwrite=args.overwrite, inputs=[args.dataset])  # fail before any expensive work
    labeled = np.asarray(_read_indices(args.labeled_indices), dtype=np.int64) if args.labeled_indices else None
    if args.push_to_hub:
        from .hub import check_repo_id

        check_repo_id(args.push_to_hub)
    current()  # launched as several processes: form the process group now, or refuse before any work
    t0 = time.perf_counter()
    pool = load_pool(args.dataset, args.split)
    logger.info(
        "loaded %s split %s: %d rows (%.1fs)", args.dataset, args.split, pool.num_rows, time.perf_counter() - t0
    )
    result = select(pool, config, labeled_indices=labeled)
    result.source = {**result.source, "dataset": source_id(args.dataset), "split": args.split}
    result.command = "svp-hf " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    result.save_to_disk(output, overwrite=args.overwrite)
    if args.push_to_hub:
        _push(output, args.push_to_hub)
    _shutdown_distributed()
    if not is_main_process():
        return 0
    t = result.timings
    extra = "".join(
        f", {label} {t[key]:.2f}s"
        for key, label in (("proxy_features", "pool features"), ("proxy_check", "self-check"))
        if key in t
    )
    check = result.proxy.self_check if result.proxy is not None else None
    print(
        f"{'Kept' if args.command == 'coreset' else 'Selected'} {len(result)} of {result.pool_size} rows "
        f"({config.strategy_name}"
        + (f" by {_article(config.proxy_name)} {config.proxy_name} proxy" if result.proxy is not None else "")
        + f") -> {output}\n"
        + _self_check_line(check)
        + f"Selection took {t['total']:.2f}s (proxy fit {t['proxy_fit']:.2f}s{extra}, "
        f"scoring {t['proxy_score']:.2f}s, strategy {t['strategy']:.3f}s). "
        f"Open it with datasets.load_from_disk({str(output)!r})"
    )
    return 0


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {number}")
    return number


def _training_args(extra: list[str]) -> dict[str, Any]:
    """Parse TrainingArguments flags (``--num_train_epochs 3``) into a dict of the fields given. A flag that is no
    field (an abbreviation included) is an error naming the closest one."""
    from transformers import HfArgumentParser, TrainingArguments

    from .training import check_training_args

    if not extra:
        return {}

    def fail(message: str):
        raise ConfigError(f"bad TrainingArguments flags ({' '.join(extra)}): {message}")

    parser = HfArgumentParser(TrainingArguments, allow_abbrev=False)
    parser.error = fail  # one line, instead of argparse's usage text and exit
    dests = {flag: a.dest for a in parser._actions for flag in a.option_strings if flag.startswith("--")}
    given = set()
    for token in extra:
        flag = token.split("=", 1)[0]
        if not flag.startswith("--"):
            continue  # a value (numbers included); a stray word is refused by the parser below
        if flag not in dests or dests[flag] == "help":
            raise ConfigError(_unknown_flag(flag, dests))
        given.add(dests[flag])
    try:
        (parsed,) = parser.parse_args_into_dataclasses(
            args=[*extra, "--output_dir", "unused"], look_for_args_file=False
        )
    except ConfigError:
        raise
    except ValueError as err:  # TrainingArguments refusing a combination, or words that are no flags
        fail(str(err).strip().splitlines()[0])
    values = {k: getattr(parsed, k) for k in sorted(given)}
    check_training_args(values)
    return values


def _unknown_flag(flag: str, dests: dict[str, str]) -> str:
    """The message for a flag that is neither ``svp-hf train``'s nor a TrainingArguments field: the closest of those
    (by difflib; else up to three that it abbreviates)."""
    import difflib

    train = _subparser(make_parser(), "train")
    own = [f for a in train._actions if a.dest != "help" for f in a.option_strings if f.startswith("--")]
    fields = sorted({f"--{dest}" for dest in dests.values() if dest != "help"})
    candidates = {c.replace("-", "_"): c for c in [*fields, *own]}  # --max_length finds --max-length
    key = flag.replace("-", "_")
    close = difflib.get_close_matches(key, list(candidates), n=1)
    shown = [candidates[close[0]]] if close else [candidates[c] for c in sorted(candidates) if c.startswith(key)][:3]
    hint = f"; did you mean {' or '.join(shown)}?" if shown else " (see svp-hf train --help)"
    return f"unknown flag {flag}: neither an svp-hf train flag nor a transformers.TrainingArguments field{hint}"


def run_train(args: argparse.Namespace) -> int:
    from .data import load_pool
    from .training import load_selection_config, train_target

    training_args = _training_args(args.extra)
    train = load_pool(args.dataset, args.split)
    selection = load_selection_config(args.dataset) if Path(args.dataset).is_dir() else None
    eval_source = args.eval_dataset  # default: where the training rows came from
    if eval_source is None:
        eval_source = selection.get("source", {}).get("dataset") if selection else args.dataset
    eval_dataset = load_pool(eval_source, args.eval_split) if eval_source else None
    metrics = train_target(
        train,
        args.model,
        args.output_dir,
        eval_dataset=eval_dataset,
        text_column=args.text_column,
        label_column=args.label_column,
        image_column=args.image_column,
        training_args=training_args,
        max_length=args.max_length,
        image_size=args.image_size,
        selection_config=selection,
        overwrite=args.overwrite,
        head_init=args.head_init,
    )
    _shutdown_distributed()
    accuracy = metrics.get("eval_accuracy")
    shown = f", eval accuracy {accuracy:.4f}" if accuracy is not None else ""
    if int(os.environ.get("RANK", "0")) == 0:
        processes = f"{metrics['world_size']} process(es)"
        print(f"Trained {args.model} on {train.num_rows} rows{shown} ({processes}) -> {args.output_dir}")
    return 0


def _push(folder, repo_id: str) -> None:
    """``--push-to-hub``: upload a finished output folder (every process takes part; the main one reports)."""
    from .distributed import is_main_process
    from .hub import push_to_hub

    url = push_to_hub(folder, repo_id)
    if is_main_process():
        print(f"Pushed to {url}")


def _shutdown_distributed() -> None:
    """Leave the process group cleanly: without it, gloo runs sometimes abort at exit after finishing their work."""
    from .distributed import shutdown

    shutdown()


def run_coreset(args: argparse.Namespace) -> int:
    args.budget, args.labeled_indices = args.keep, None
    return run_select(args)


def run_active_learn(args: argparse.Namespace) -> int:
    from .active import ActiveLearner, ActiveLearningConfig
    from .data import load_pool
    from .distributed import current, is_main_process

    config = ActiveLearningConfig(
        proxy=args.proxy,
        strategy=args.strategy,
        initial=args.initial,
        budgets=args.budgets
        if isinstance(args.budgets, list)
        else [b for b in str(args.budgets).split(",") if b.strip()],
        batch_size=args.batch_size,
        seed=args.seed,
        text_column=args.text_column,
        label_column=args.label_column,
        image_column=args.image_column,
        proxy_kwargs=args.proxy_kwargs,
        strategy_kwargs=args.strategy_kwargs,
        stratified=args.stratified,
        label_names=[n.strip() for n in args.label_names.split(",")] if args.label_names else None,
        initial_strategy=args.initial_strategy,
    )
    if args.push_to_hub:
        from .hub import check_repo_id

        check_repo_id(args.push_to_hub)
    check_output_path(args.output_dir, inputs=[args.dataset], resumable=True)
    current()  # launched as several processes: form the process group now, or refuse before any work
    pool = load_pool(args.dataset, args.split)
    eval_dataset = load_pool(args.dataset, args.eval_split) if args.eval_split else None
    learner = ActiveLearner(
        pool,
        args.output_dir,
        config,
        oracle=args.oracle,
        eval_dataset=eval_dataset,
        source={"dataset": source_id(args.dataset), "split": args.split},
        oracle_options={"url": args.label_studio_url} if args.oracle == "label-studio" else None,
    )
    if args.label_studio_url and args.oracle != "label-studio":
        raise ConfigError("--label-studio-url applies to --oracle label-studio")
    if args.accept_partial and not args.labels and args.oracle != "label-studio":
        raise ConfigError("--accept-partial applies to --labels FILE (or to --oracle label-studio)")
    if args.labels:
        state = learner.import_labels(args.labels, accept_partial=args.accept_partial)
        print(f"Imported labels for round {state.completed_rounds - 1}: {len(state.indices)} rows labeled")
    before = learner.load_state().completed_rounds
    state = learner.run(max_rounds=args.max_rounds, accept_partial=args.accept_partial)
    out = Path(args.output_dir)
    pending = learner._pending()
    if args.oracle == "label-studio" and state.completed_rounds > before and learner.waiting is None:
        print(f"Collected labels from Label Studio: {len(state.indices)} rows labeled")
    if pending is not None and args.oracle == "label-studio":
        labeler = learner.labeler
        where = labeler.project_url(labeler.project_id())
        print(learner.waiting or f"Round {pending['round']}: annotate its tasks in Label Studio ({where})")
        print("Then rerun this command: it collects the annotations and queues the next round.")
        return 0
    if pending is not None:
        print(
            f"Round {pending['round']} needs labels: fill the label column of {out / pending['files'][1]} "
            f"(or {out / pending['files'][0]}), then rerun this command with --labels FILE; or label it in Label "
            f"Studio: svp-hf export-label-studio {out} --output tasks.json"
        )
        return 0
    if args.push_to_hub and state.completed_rounds >= len(learner.plan):
        _push(out, args.push_to_hub)
    _shutdown_distributed()
    if not is_main_process():
        return 0
    total = len(learner.plan)
    status = "finished" if state.completed_rounds >= total else f"stopped after round {state.completed_rounds - 1}"
    last = state.records[-1] if state.records else {}
    fit = sum(r["timings_s"].get("proxy_fit", 0) for r in state.records)
    score = sum(r["timings_s"].get("proxy_score", 0) for r in state.records)
    rank = sum(r["timings_s"].get("strategy", 0) for r in state.records)
    final = last.get("final_proxy", last)
    accuracy = f", proxy accuracy {final['proxy_eval_accuracy']:.4f}" if "proxy_eval_accuracy" in final else ""
    print(
        f"Active learning {status}: {state.completed_rounds}/{total} rounds, {len(state.indices)} of "
        f"{pool.num_rows} rows labeled{accuracy} -> {out / 'labeled'}\n"
        + _self_check_line(final.get("proxy_self_check"))
        + f"Selection time {fit + score + rank:.2f}s (proxy fit {fit:.2f}s, scoring {score:.2f}s, "
        f"ranking {rank:.3f}s); per-round records in {out / 'rounds.jsonl'}"
    )
    return 0


def run_export_label_studio(args: argparse.Namespace) -> int:
    from .labelstudio import export_folder, write_export

    names = [n.strip() for n in args.label_names.split(",")] if args.label_names else None
    tasks, config_xml, summary = export_folder(args.dir, label_names=names, image_url_prefix=args.image_url_prefix)
    tasks_path, config_path = write_export(tasks, config_xml, args.output)
    what = f"round {summary['round']}" if summary["round"] is not None else "the selection"
    guesses = " with the proxy's predictions" if summary["predictions"] else ""
    print(
        f"Wrote {summary['tasks']} Label Studio tasks of {what}{guesses} -> {tasks_path}; labeling config -> "
        f"{config_path}\nImport the tasks into a project with that config, annotate, Export > JSON, then run: "
        f"svp-hf import-label-studio {args.dir} EXPORT.json"
    )
    return 0


def run_import_label_studio(args: argparse.Namespace) -> int:
    from .active import STATE_FILE, ActiveLearner, ActiveLearningConfig
    from .data import load_pool

    folder = Path(args.dir)
    if (folder / "selection_config.json").is_file():
        raise ConfigError(f"{folder} is a selection; import-label-studio commits a pending active-learning round")
    if not (folder / STATE_FILE).is_file():
        raise ConfigError(f"{folder} is not an active-learning folder (no {STATE_FILE})")
    saved = json.loads((folder / STATE_FILE).read_text())
    if saved.get("pending") is None:
        raise ConfigError(f"{folder} has no round waiting for labels")
    source = saved.get("source") or {}
    dataset, split = args.dataset or source.get("dataset"), args.split or source.get("split") or "train"
    if not dataset:
        raise ConfigError(f"{folder} does not record its pool; give it with --dataset (and --split)")
    learner = ActiveLearner(
        load_pool(dataset, split),
        folder,
        ActiveLearningConfig(**saved["config"]),
        oracle="human",
        source={"dataset": source_id(dataset), "split": split},
    )
    state = learner.import_labels(args.export, accept_partial=args.accept_partial)
    record = state.records[-1]
    studio = record.get("label_studio", {})
    returned = f", {record['returned_to_pool']} returned to the pool" if record.get("returned_to_pool") else ""
    disagreed = len(studio.get("disagreements", []))
    print(
        f"Imported round {record['round']} from Label Studio: {len(state.indices)} rows labeled{returned}; "
        f"{disagreed} tasks with disagreeing annotators (recorded in {folder / 'rounds.jsonl'}). "
        "Rerun svp-hf active-learn on this folder for the next query."
    )
    return 0


def run_push(args: argparse.Namespace) -> int:
    from .hub import push_to_hub

    where = push_to_hub(args.dir, args.repo_id, local_dir=args.local_dir, private=args.private,
                        revision=args.revision, overwrite=args.overwrite)  # fmt: skip
    if args.local_dir:
        files = sorted(str(p.relative_to(where)) for p in Path(where).rglob("*") if p.is_file())
        print(f"Wrote what would be uploaded to {args.repo_id} to {where} (nothing uploaded): {', '.join(files)}")
    else:
        print(f"Pushed {args.dir} to {where}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    debug = "--debug" in argv
    try:
        _apply_config_file(parser, argv)
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "accepts_extra", False):
            parser.parse_args(argv)  # reports the unknown flags the usual way
        args.extra = extra
        if not getattr(args, "command", None):
            parser.print_help(sys.stderr)
            return 2
        missing = [f"--{name.replace('_', '-')}" for name in args.required if getattr(args, name, None) in (None, "")]
        if missing:
            parser.exit(
                2, f"svp-hf {args.command}: error: missing {', '.join(missing)} (on the command line or in --config)\n"
            )
        args.progress = _setup_logging(args)
        return args.func(args)
    except SvpError as err:
        if debug:
            raise
        print(f"svp-hf: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("svp-hf: interrupted; no output was written", file=sys.stderr)
        return 130
    except Exception as err:  # anything unexpected: still one line, with the type, unless --debug
        if debug:
            raise
        print(f"svp-hf: error: {type(err).__name__}: {err} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


def _version() -> str:
    from . import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
