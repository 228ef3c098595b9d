"""Selection via Proxy, measured: how much faster is data selection with a cheap proxy than with the target selecting
for itself, and is the target trained on the proxy's selection as accurate?

For one dataset, simulated active learning (random initial 2% of the pool, then one query per budget step: the
paper's schedule) runs with
  (a) ``baseline``: the target architecture as its own selection model (trained with the target's own recipe),
  (b) ``fasttext``: the fastText proxy,
  (c) ``tfidf``: a cheaper proxy (TF-IDF + a linear head),
  (d) ``random``: random selection,
and, by name, ``hybrid`` (TF-IDF beside a frozen all-MiniLM-L6-v2, a linear SVM) and ``embedding`` (the frozen encoder
with a linear head); then the target is trained from scratch (or, ``--target minilm``, fine-tuned from pretrained
weights) on each labeled set at each budget and evaluated on the test split.
A method is ``SELECTOR`` (with ``--strategy``, default least_confidence) or ``SELECTOR+STRATEGY`` with any registered
strategy, e.g. ``hybrid+margin``, ``hybrid+cluster_margin`` (the batch-aware one), ``baseline+cluster_margin``, and
strategy arguments after colons, ``hybrid+cluster_margin:rare_below=0`` (rare-class hunting off);
``random`` takes none. ``--methods comparison`` names the pretrained-target comparison (issue 15): every selector
with margin and with cluster_margin, and random.
Reported: data-selection time (proxy training + scoring + ranking, summed over the rounds up to each budget, with the
one-time pool features of the tfidf / embedding / hybrid proxies: every cell starts with an empty feature cache) and
its speed-up over the baseline with the same strategy (else plain ``baseline``); target accuracy and macro-F1 at each
budget (mean ± std over seeds); Spearman rank correlation between each proxy's and the baseline's scores of the same
pool in the first query (same labeled set; score-based strategies only: a batch-aware strategy's scores are its pick
order); Jaccard overlap of the rows each method added with the rows the baseline added; class counts of every
labeled set. ``--coreset`` adds core-set selection: the target trained on 30/50/70% of the pool (``--keep``) kept
by forgetting events / entropy (fastText) / greedy k-centers on the frozen MiniLM embeddings / random against the full
pool, with end-to-end time. ``--cells-from`` gathers cells run elsewhere (seeds split across processes or machines).

Budgets are fractions of the pool (the paper's 10-50%) or row counts, the regime of fine-tuning a pretrained model:
``--initial 100 --budgets 200,400,800,1600``. Per-class minimum (``--min-per-class K``, default ``auto``): the
initial set holds K random rows of every class (all of a class's rows when it has fewer), the rest drawn at random
from the other rows, and grows to K x classes rows when it was smaller; ``auto`` is K = 2 when the initial set
averages fewer than 10 rows per class (Banking77's 77 classes with 100 rows: 154 rows, 2 per class) and K = 0 (a
plain random draw, as before) otherwise (AG News, SST-2, IMDB). Queries are the strategies' own choice: no class
minimum is forced on them.

``--imbalance CLASS:FRACTION`` builds an imbalanced pool with `imbalance()`: after the pool is drawn, CLASS (a label
name or id) keeps a seeded random FRACTION of its rows (seed 0, the same pool for every run seed; at least one row),
every other row is kept, in pool order (``--imbalance 3:0.05``: AG News with Sci/Tech cut to 5% of its rows). The
eval split is not cut: accuracy and macro-F1 weigh every class as the test split does, and the rare class's recall
(``target_rare_recall``) is read on all its test rows.

    python -m benchmarks.svp_speedup --dataset ../shared/data/ag_news --quick
    python -m benchmarks.svp_speedup --dataset ../shared/data/ag_news --full --coreset
    python -m benchmarks.svp_speedup --dataset ../shared/data/ag_news --target minilm --pool-size 4000 \
        --test-size 1000 --initial 100 --budgets 200,400,800,1600 --methods comparison --seeds 0,1,2
    python -m benchmarks.svp_speedup --dataset ../shared/data/ag_news --target minilm --pool-size 4000 \
        --initial 100 --budgets 200,400,800 --imbalance 3:0.05 --methods random,hybrid+cluster_margin

``--quick`` (under 5 minutes on 2 CPU cores with the default bert-tiny target) ends with two lines:
``selection speed-up: X.Xx`` (fastText vs. baseline, at the largest budget) and
``target accuracy gap vs baseline: Y.Y points`` (baseline minus fastText at the largest budget; positive = proxy
worse). ``--quick --target minilm`` is a smoke run of the pretrained target: a 1,000-row pool, 500 test rows, the
recipe's step floor cut from 100 to 25 optimizer steps, and (unless ``--methods`` says otherwise) the baseline
selecting with cluster_margin, the hybrid proxy with cluster_margin and random; its last two lines compare the hybrid
proxy with that baseline. Its numbers show the pipeline works, they are not evidence (the recipe is cut short). It
took 5.2 minutes on 2 CPU cores (``python -m benchmarks.svp_speedup --dataset ../shared/data/ag_news --quick
--target minilm``).
Results go to ``benchmarks/results/svp_speedup_<dataset>_<target>_<mode>.json`` with plots beside it. Every finished
(seed, method) cell is saved in ``<results>.partial/`` as it ends: an interrupted run started again with the same
settings resumes from there; ``--keep-cells`` keeps them after the run, for a later run that adds seeds or methods.
``--verdict RESULTS_JSON ...`` prints one line per pool, proxy method and budget: within 1 point of the target
selecting for itself?, above random?, speed-up (the summary of BENCHMARKS.md). ``--report RESULTS_JSON`` prints a
results file as the markdown tables of BENCHMARKS.md
(the paper's speed-up table shape, accuracy, macro-F1, rare-class recall, agreement, core-set; files written before
macro-F1 was recorded show accuracy only) and redraws its plots. ``--methods`` runs a subset (e.g. ``fasttext,random``
to compare strategies without the slow baseline); ``--batch-size`` changes the query size (default: one query per
budget step, as in the paper). Targets are evaluated on the test split, or on validation where a dataset has none
(SST-2); ``--eval-split`` picks another. ``--proxy-words N`` sets the proxies' ``max_words``: they read only the
first N words of each row, about what a short-input target reads.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"

MINILM_BASELINE = {"model": "all-MiniLM-L6-v2", "epochs": "recipe", "learning_rate": 1e-4, "batch_size": 32,
                   "weight_decay": 0.01, "warmup": 0.1, "max_length": 64, "head_init": "auto"}  # fmt: skip
# Targets that fit this CPU, each with its own training recipe; the baseline selector is the same model trained the
# same way (the paper's "target selecting for itself").
TARGETS = {
    "bert-tiny": {
        # lr 3e-3 collapsed on 3,000+ rows (40% test accuracy at 20-30% of AG News); 1e-3: 82% on 4,500 rows
        "train": {"num_train_epochs": 5, "learning_rate": 1e-3, "per_device_train_batch_size": 32},
        "max_length": 64,
        "baseline": ("transformer", {"model": "bert-tiny", "epochs": 5, "learning_rate": 1e-3, "max_length": 64}),
    },
    "vdcnn-9": {
        "train": {"num_train_epochs": 6, "per_device_train_batch_size": 128},
        "max_length": 256,
        "baseline": ("vdcnn", {"depth": 9, "epochs": 6, "max_length": 256}),
    },
    "minilm": {
        # the pretrained all-MiniLM-L6-v2 fine-tuned with svp_hf.training's pretrained-encoder recipe (measured there:
        # lr 1e-4, 10% warm-up, epochs for at least 100 optimizer steps, the new head started from a linear probe
        # where the fine-tune is short for its classes), at 64 tokens to fit this CPU; the baseline is the same model
        # and recipe in the transformer proxy ("epochs": "recipe": that floor on each round's rows)
        "train": {"learning_rate": 1e-4, "per_device_train_batch_size": 32, "weight_decay": 0.01, "warmup_steps": 0.1},
        "head_init": "auto",
        "max_length": 64,
        "baseline": ("transformer", MINILM_BASELINE),
    },
}
MODES = {
    "quick": {"pool": 3000, "test": 1000, "budgets": [0.1, 0.2], "seeds": [0], "keep": [0.5]},
    "full": {
        "pool": None,
        "test": None,
        "budgets": [0.1, 0.2, 0.3, 0.4, 0.5],
        "seeds": [0, 1, 2],
        "keep": [0.3, 0.5, 0.7],
    },
}
# ``--quick --target minilm``: a smoke run in a few minutes on 2 CPU cores (a smaller pool, a step floor of 25 in
# place of the recipe's 100, the default product beside the baseline and random); its numbers are not evidence
QUICK_PRETRAINED = {
    "pool": 1000, "test": 500, "min_steps": 25,
    "methods": ("baseline+cluster_margin", "hybrid+cluster_margin", "random"),
}  # fmt: skip
PROXIES = {"fasttext": ("fasttext", {}), "tfidf": ("tfidf", {})}
# proxies beside the paper's two; kept apart so that runs naming none of them keep their checkpoint key
NEWER_PROXIES = {"hybrid": ("hybrid", {}), "embedding": ("embedding", {})}


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="../shared/data/ag_news", help="a data folder with train/test splits")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick")
    mode.add_argument("--full", dest="mode", action="store_const", const="full")
    p.add_argument("--target", default="bert-tiny", choices=sorted(TARGETS))
    p.add_argument("--strategy", default="least_confidence")
    p.add_argument("--seeds", default=None, help="comma-separated; default: 0 (quick) or 0,1,2 (full)")
    p.add_argument("--pool-size", type=int, default=None, help="override the mode's pool size (rows of train)")
    p.add_argument("--test-size", type=int, default=None, help="override the mode's test rows (random subset)")
    p.add_argument(
        "--eval-split", default=None,
        help="split the targets are evaluated on (default: test, or validation where there is no test split: SST-2)",
    )  # fmt: skip
    p.add_argument(
        "--budgets", default=None,
        help="override the mode's budgets: fractions of the pool (0.1,0.2,0.3) or row counts (200,400,800,1600)",
    )  # fmt: skip
    p.add_argument("--initial", default="0.02", help="the initial labeled set: a fraction (0.02) or a count (100)")
    p.add_argument(
        "--min-per-class", default="auto", metavar="K",
        help="rows of every class in the initial set (auto: 2 when it averages fewer than 10 rows a class, else 0)",
    )  # fmt: skip
    p.add_argument(
        "--imbalance", default=None, metavar="CLASS:FRACTION",
        help="cut CLASS (name or id) to FRACTION of its pool rows, seeded (e.g. 3:0.05); its recall is reported",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", default=None,
        help="rows per query: none (default, the paper's one query per budget step), auto, a fraction or a count",
    )  # fmt: skip
    p.add_argument(
        "--methods", default=None,
        help=f"comma-separated SELECTOR or SELECTOR+STRATEGY, selectors {', '.join(SELECTORS)} (default: "
        f"{','.join(METHODS)}); 'comparison': each proxy and the baseline with margin and cluster_margin, and random",
    )  # fmt: skip
    p.add_argument(
        "--proxy-words", type=int, default=None, metavar="N",
        help="the proxies (fasttext, tfidf) read only the first N words of each text (their max_words), about what a "
        "target with a short max_length sees; the target and the baseline read the rows as before",
    )  # fmt: skip
    p.add_argument("--coreset", action="store_true", help="also measure core-set selection")
    p.add_argument(
        "--keep", default=None, metavar="FRACTIONS",
        help="the core-set's kept fractions of the pool, comma-separated; default: 0.5 (quick) or 0.3,0.5,0.7 (full)",
    )  # fmt: skip
    p.add_argument(
        "--keep-cells", action="store_true",
        help="keep the finished cells (<results>.partial/) after the run, so a later run with more seeds or methods "
        "and the same settings reuses them",
    )  # fmt: skip
    p.add_argument(
        "--cells-from", action="append", default=[], metavar="PARTIAL_DIR",
        help="finished cells of another run with the same settings (its <results>.partial folder, from other "
        "processes or another machine) are taken as done; repeatable",
    )  # fmt: skip
    p.add_argument("--report", metavar="RESULTS_JSON", help="print a results file as markdown tables, redraw plots")
    p.add_argument(
        "--verdict", nargs="+", metavar="RESULTS_JSON",
        help="per pool, method and budget of these results files: is the proxy-selected target within 1 point of the "
        "target-selected one, above random, and how much faster did it select",
    )  # fmt: skip
    p.add_argument(
        "--out", default=None, help="results JSON (default: benchmarks/results/svp_speedup_<ds>_<mode>.json)"
    )
    return p


def load_eval_split(dataset: str, split: str | None = None):
    """The split targets are evaluated on, and its name: ``split`` when given, else test, else validation (SST-2)."""
    from svp_hf.data import load_pool
    from svp_hf.errors import SplitNotFoundError

    if split:
        return load_pool(dataset, split), split
    try:
        return load_pool(dataset, "test"), "test"
    except SplitNotFoundError:
        return load_pool(dataset, "validation"), "validation"


def _load(args, settings):
    from svp_hf.data import load_pool

    pool = load_pool(args.dataset, "train")
    test, args.eval_split = load_eval_split(args.dataset, args.eval_split)
    size = args.pool_size or settings["pool"]
    if size and size < pool.num_rows:
        pool = pool.shuffle(seed=0).select(range(size)).flatten_indices()
    test_size = args.test_size or settings["test"]
    if test_size and test_size < test.num_rows:
        test = test.shuffle(seed=0).select(range(test_size)).flatten_indices()
    if args.imbalance:
        label, fraction = _parse_imbalance(args.imbalance)
        pool = imbalance(pool, label, fraction)
    return pool, test


IMBALANCE_SEED = 0  # the imbalanced pool is one pool: the same rows whatever the run's seeds


def imbalance(pool, label: int | str, fraction: float, seed: int = IMBALANCE_SEED, label_column: str = "label"):
    """``pool`` with class ``label`` (a label name or id) cut to ``fraction`` of its rows: ``max(1, round(fraction *
    rows of that class))`` of them, drawn at random with ``seed``, and every row of the other classes, in pool order.
    The same pool, label, fraction and seed always give the same rows."""
    from svp_hf.data import TextClassificationTask

    if not 0 < fraction <= 1:
        raise SystemExit(f"--imbalance: the fraction must be in (0, 1], got {fraction}")
    task = TextClassificationTask.from_dataset(pool, label_column=label_column)
    cls = _class_id(task.label_names, label)
    ids = task.encode_labels(pool)
    members = np.flatnonzero(ids == cls)
    keep = max(1, round(fraction * members.size)) if members.size else 0
    kept = np.random.default_rng(seed).choice(members, size=keep, replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(ids != cls), kept]))
    return pool.select(rows).flatten_indices()


def _class_id(names, label: int | str) -> int:
    names = [str(n) for n in names]
    if str(label) in names:
        return names.index(str(label))
    if str(label).isdigit() and int(label) < len(names):
        return int(label)
    raise SystemExit(f"--imbalance: no class {label!r}; the classes are {', '.join(names)} (or their ids)")


def _parse_imbalance(text: str) -> tuple[str, float]:
    label, sep, fraction = text.rpartition(":")
    try:
        if not (sep and label):
            raise ValueError
        return label, float(fraction)
    except ValueError:
        raise SystemExit(f"--imbalance takes CLASS:FRACTION (e.g. 3:0.05 or Sci/Tech:0.05), got {text!r}") from None


def _selection_seconds(record: dict) -> float:
    """What choosing the rows of one round cost: proxy fit, scoring, strategy and the pool's one-time features."""
    t = record.get("timings_s", {})
    return float(sum(t.get(k, 0.0) for k in ("proxy_fit", "proxy_score", "strategy", "proxy_features")))


def _train_target(
    target: str, train, test, seed: int, workdir: Path, recall_of: int | None = None, min_steps: int | None = None
) -> dict:
    """Train the target on ``train`` with its recipe; its accuracy and macro-F1 on ``test``, the training seconds and,
    with ``recall_of`` (a class id), that class's recall on ``test``. ``min_steps``: a pretrained target's step floor
    in place of the recipe's (the smoke run of ``--quick``)."""
    from svp_hf.training import pretrained_epochs, train_target

    spec = TARGETS[target]
    out = workdir / f"target-{time.monotonic_ns()}"
    epochs = {}
    if min_steps:
        batch = spec["train"]["per_device_train_batch_size"]
        epochs = {"num_train_epochs": pretrained_epochs(train.num_rows, batch, min_steps=min_steps)}
    t0 = time.perf_counter()
    metrics = train_target(
        train, target, out, eval_dataset=test, max_length=spec["max_length"], overwrite=True,
        head_init=spec.get("head_init"),
        training_args={**spec["train"], **epochs, "seed": seed, "save_strategy": "no", "eval_strategy": "no",
                       "logging_strategy": "no", "log_level": "error"},
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    result = {
        "target_accuracy": float(metrics["eval_accuracy"]),
        "target_macro_f1": float(metrics["eval_macro_f1"]),
        "target_train_s": seconds,
    }
    if recall_of is not None:
        result["target_rare_recall"] = _recall(out, test, recall_of, spec["max_length"])
    shutil.rmtree(out, ignore_errors=True)
    return result


def _head_probe() -> dict:
    """The settings of the linear-probe head start (svp_hf.head_init), for the checkpoint key."""
    from svp_hf.head_init import PROBE_BELOW_ROWS_SEEN, PROBE_C

    return {"C": PROBE_C, "auto_below_rows_seen": PROBE_BELOW_ROWS_SEEN}


def _target_options(settings: dict) -> dict:
    """`_train_target`'s keyword arguments for a run: the rare class, and the step floor where a mode sets one."""
    steps = settings.get("min_steps")
    return {"recall_of": settings["rare_class"], **({"min_steps": steps} if steps else {})}


def _recall(model_dir: Path, test, class_id: int, max_length: int) -> float:
    """Recall of ``class_id`` on ``test`` by the model saved in ``model_dir`` (one more pass over ``test``)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    import svp_hf.models  # noqa: F401  registers VDCNN with the Auto classes
    from svp_hf.data import TextClassificationTask
    from svp_hf.training import TargetModel, _encode

    task = TextClassificationTask.from_dataset(test)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    target = TargetModel(model, AutoTokenizer.from_pretrained(model_dir), "saved", {}, [], max_length)
    encoded = _encode(test, target, task)
    args = TrainingArguments(output_dir=str(model_dir / "predict"), per_device_eval_batch_size=128, report_to="none",
                             use_cpu=not _cuda(), log_level="error")  # fmt: skip
    logits = Trainer(model=model, args=args, processing_class=target.tokenizer).predict(encoded).predictions
    labels = np.asarray(encoded["labels"])
    rare = labels == class_id
    return float((np.asarray(logits).argmax(-1)[rare] == class_id).mean()) if rare.any() else float("nan")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_name() -> str:
    """Where targets and proxies ran: ``cpu`` or the GPU's name (results of a run gathered from several machines with
    ``--cells-from`` say so per cell)."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


# The paper's comparison, the default; any SELECTOR+STRATEGY (`method_spec`) may be named with --methods.
METHODS = ("baseline", "fasttext", "tfidf", "random")
SELECTORS = ("baseline", "fasttext", "tfidf", "hybrid", "embedding", "random")
PROXY_SELECTORS = SELECTORS[1:-1]
# --methods comparison (issue 15): every selector with margin and with the batch-aware cluster_margin, and random
COMPARISON = (
    *(f"{sel}+{strategy}" for sel in SELECTORS[:-1] for strategy in ("margin", "cluster_margin")),
    "random",
)


def method_spec(method: str, default_strategy: str) -> tuple[str, str]:
    """``(selector, strategy)`` of a method name: ``SELECTOR`` (the run's ``--strategy``; random selection for
    ``random``) or ``SELECTOR+STRATEGY``, optionally with strategy arguments, ``SELECTOR+STRATEGY:KEY=VALUE...``
    (`strategy_kwargs`)."""
    from svp_hf.strategies import STRATEGIES

    selector, _, strategy = method.partition("+")
    strategy = strategy.partition(":")[0]
    if selector not in SELECTORS:
        raise SystemExit(f"--methods: unknown selector in {method!r}; choose from {', '.join(SELECTORS)}")
    if selector == "random":
        if strategy or ":" in method:
            raise SystemExit(f"--methods: {method!r}: random selection takes no strategy (name it 'random')")
        return selector, "random"
    strategy = strategy or default_strategy
    if strategy not in STRATEGIES.names():
        raise SystemExit(f"--methods: unknown strategy in {method!r}; choose from {', '.join(STRATEGIES.names())}")
    strategy_kwargs(method)  # bad arguments stop the run before any work
    return selector, strategy


def strategy_kwargs(method: str) -> dict:
    """The strategy arguments of a method name: ``hybrid+cluster_margin:rare_below=0`` gives ``{"rare_below": 0}``
    (values read as JSON where they parse: numbers, true/false/null; else strings)."""
    import json

    _, *pairs = method.partition("+")[2].split(":")
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not (sep and key):
            raise SystemExit(f"--methods: {method!r}: strategy arguments are :KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _method_names(args) -> list[str]:
    if args.methods is None:
        return list(METHODS)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    names = [n for m in names for n in (COMPARISON if m == "comparison" else [m])]
    return list(dict.fromkeys(names))


def _methods(args) -> dict:
    """``{method: (proxy, proxy kwargs, strategy)}`` in the order given, the baselines first."""
    names = _method_names(args)
    unknown = sorted({m for m in names if m.partition("+")[0] not in SELECTORS})
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {', '.join(SELECTORS)} (or SELECTOR+STRATEGY)")
    if args.proxy_words is not None and args.proxy_words < 1:
        raise SystemExit(f"--proxy-words must be a positive integer, got {args.proxy_words}")
    cut = {"max_words": args.proxy_words} if args.proxy_words else {}
    proxies = {m: (proxy, {**kwargs, **cut}) for m, (proxy, kwargs) in {**PROXIES, **NEWER_PROXIES}.items()}
    table = {"baseline": TARGETS[args.target]["baseline"], **proxies, "random": ("fasttext", cut)}
    out = {}
    for name in sorted(names, key=lambda m: not m.startswith("baseline")):
        selector, strategy = method_spec(name, args.strategy)
        out[name] = (*table[selector], strategy)
    return out


def _proxy(proxy: str, kwargs: dict, seed: int, min_steps: int | None = None):
    """What `ActiveLearningConfig` gets: the name and kwargs, or for ``"epochs": "recipe"`` a transformer proxy
    whose epochs follow the pretrained-encoder recipe's step floor (``min_steps`` where given) on each round's labeled
    rows."""
    if kwargs.get("epochs") != "recipe":
        return proxy, kwargs
    from svp_hf.proxies.transformer import TransformerProxy
    from svp_hf.training import PRETRAINED_MIN_STEPS, pretrained_epochs

    floor = min_steps or PRETRAINED_MIN_STEPS

    class RecipeTransformerProxy(TransformerProxy):
        def _train(self, dataset, labels, observe):
            batch = int(self.hyperparameters["batch_size"])
            self.hyperparameters["epochs"] = pretrained_epochs(len(labels), batch, min_steps=floor)
            return super()._train(dataset, labels, observe)

    return RecipeTransformerProxy(seed=seed, **{**kwargs, "epochs": 3}), {}


def _budget(text: str) -> float | int:
    """``0.1`` (a fraction of the pool) or ``200`` (rows)."""
    from svp_hf.data import check_budget
    from svp_hf.errors import BudgetError

    try:
        return check_budget(text.strip())
    except (BudgetError, ValueError) as err:
        raise SystemExit(f"--budgets: {err}") from None


def _fractions(text: str, flag: str) -> list[float]:
    """``0.3,0.5,0.7``: fractions of the pool, each above 0 and below 1."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(0 < v < 1 for v in values):
        raise SystemExit(f"{flag} takes fractions of the pool between 0 and 1, comma-separated (e.g. 0.3,0.5,0.7); "
                         f"got {text!r}")  # fmt: skip
    return sorted(set(values))


def _batch_size(text: str | None):
    if text is None or text.lower() == "none":
        return None  # the paper's schedule: one query per budget step
    if text.lower() == "auto":
        return "auto"
    return float(text) if "." in text else int(text)


def _settings_differ(theirs: dict, ours: dict) -> list[str]:
    """The settings in which two runs' checkpoint keys differ (empty: one's cells are valid in the other). The dataset
    folder is compared by name, since it may have lived elsewhere; the proxies' settings where both runs name the proxy
    (a run keys only the newer proxies its methods use, and a cell depends on its own selector's alone)."""
    # a core-set cell names its kept fraction, so the list of fractions (keyed by older runs) changes no cell
    theirs, ours = ({**k, "dataset": Path(k.get("dataset", "")).name, "keep": None} for k in (theirs, ours))
    their_proxies, our_proxies = theirs.pop("proxies", {}), ours.pop("proxies", {})
    differ = sorted(k for k in {**theirs, **ours} if theirs.get(k) != ours.get(k))
    return differ + ["proxies"] * any(their_proxies[p] != our_proxies[p] for p in their_proxies.keys() & our_proxies)


class _Checkpoint:
    """Finished (seed, method) cells of a long run, kept on disk so an interrupted run resumes where it stopped.

    Keyed by everything that changes a cell's result; a run with other settings is refused (its cells would replace
    these), one that names more or fewer proxies (methods added or dropped) keeps them (see `_settings_differ`)."""

    def __init__(self, path: Path, key: dict):
        import json

        self.dir = path.with_suffix(".partial")
        self.key = json.loads(json.dumps(key))  # as it reads back (tuples become lists)
        self.cells: dict[str, dict] = {}
        index = self.dir / "cells.json"
        if index.exists():
            saved = json.loads(index.read_text())
            differ = _settings_differ(saved.get("key", {}), self.key)
            if differ:  # never overwrite another run's cells (a committed results file's among them)
                raise SystemExit(
                    f"{self.dir} holds the finished cells of a run with other settings ({', '.join(differ)}); this "
                    f"run would replace them. Write to another --out, or delete {self.dir} to start afresh"
                )
            self.cells = saved["cells"]
            self._keep_proxies_of(saved.get("key", {}))
            if self.cells:
                print(f"resuming: {len(self.cells)} finished cells from {self.dir}", flush=True)

    def get(self, seed: int, cell: str) -> list | None:
        """The cell's result rows, or None when it has not finished."""
        done = self.cells.get(f"{seed}/{cell}")
        return None if done is None else done["runs"]

    def array(self, seed: int, cell: str, name: str) -> np.ndarray:
        return np.load(self.dir / f"{seed}-{cell}-{name}.npy")

    def put(self, seed: int, cell: str, runs: list, **arrays: np.ndarray) -> None:
        self._add(seed, cell, runs, arrays)
        self._write_index()

    def _add(self, seed: int, cell: str, runs: list, arrays: dict) -> None:
        """A cell's arrays on disk (atomically) and its runs in memory; `_write_index` makes it count."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            tmp = self.dir / f".{seed}-{cell}-{name}.npy"
            np.save(tmp, array)
            os.replace(tmp, self.dir / f"{seed}-{cell}-{name}.npy")
        self.cells[f"{seed}/{cell}"] = {"runs": runs}

    def _write_index(self) -> None:
        from svp_hf.io import write_json_atomic

        write_json_atomic(self.dir / "cells.json", {"key": self.key, "cells": self.cells})

    def _keep_proxies_of(self, other_key: dict) -> None:
        """Key the settings of proxies whose cells came from another run but that this run does not name, so a later
        run naming them with other settings cannot take those cells."""
        self.key["proxies"] = {**other_key.get("proxies", {}), **self.key.get("proxies", {})}

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def absorb(self, other: Path) -> int:
        """Take the finished cells of another run's ``.partial`` folder (``--cells-from``: seeds or methods run in
        other processes, or on another machine), those this run lacks; returns how many. The other run's settings must
        be this run's, but its dataset folder may have lived elsewhere (same folder name), and it may have named
        other proxies (those both name must agree)."""
        import json

        index = Path(other) / "cells.json"
        if not index.exists():
            raise SystemExit(f"--cells-from {other}: no cells.json there (a run's <results>.partial folder)")
        saved = json.loads(index.read_text())

        differ = _settings_differ(saved.get("key", {}), self.key)
        if differ:
            raise SystemExit(f"--cells-from {other}: that run's settings differ from this one's ({', '.join(differ)})")
        self._keep_proxies_of(saved.get("key", {}))
        new = {name: cell for name, cell in saved["cells"].items() if name not in self.cells}
        for name, cell in new.items():
            seed, _, method = name.partition("/")
            files = {a: Path(other) / f"{seed}-{method}-{a}.npy" for a in ("scores", "added")}
            arrays = {a: np.load(f) for a, f in files.items() if f.exists()}  # core-set cells keep no arrays
            self._add(int(seed), method, cell["runs"], arrays)
        if new:
            self._write_index()  # once, after every array is in place
        return len(new)


def run_active_learning(args, settings, pool, test, workdir: Path, checkpoint: _Checkpoint) -> dict:
    from benchmarks.vs_small_text import cold_feature_cache
    from svp_hf.active import ActiveLearningConfig
    from svp_hf.data import resolve_budget

    budgets = settings["budgets"]
    methods = _methods(args)
    runs: list = []
    for seed in settings["seeds"]:
        first_scores = {}
        added = {}
        for method, (proxy, kwargs, strategy) in methods.items():
            cell_runs = checkpoint.get(seed, method)
            if cell_runs is not None:
                first_scores[method] = checkpoint.array(seed, method, "scores")
                added[method] = set(checkpoint.array(seed, method, "added").tolist())
                runs.extend(cell_runs)
                continue
            proxy, kwargs = _proxy(proxy, kwargs, seed, settings.get("min_steps"))
            config = ActiveLearningConfig(
                proxy=proxy, proxy_kwargs=kwargs, strategy=strategy, strategy_kwargs=strategy_kwargs(method),
                initial=settings["initial"], budgets=budgets,
                batch_size=_batch_size(args.batch_size), seed=seed, stratified=settings["min_per_class"] > 0,
            )  # fmt: skip
            out = workdir / f"al-{method}-{seed}"
            t0 = time.perf_counter()
            with cold_feature_cache(workdir / f"features-{method}-{seed}"):  # every cell pays for its pool features
                state = _learner(pool, out, config, settings["min_per_class"]).run()
            wall = time.perf_counter() - t0
            records = state.records
            cumulative = np.cumsum([_selection_seconds(r) if i else 0.0 for i, r in enumerate(records)])
            first_scores[method] = np.load(out / "scores" / "round_0001.npy")
            added[method] = set(state.indices[state.rounds > 0].tolist())
            cell_runs = []
            for budget in budgets:
                # the last round of this budget step (one round per step in the paper's schedule, more with batches)
                size = resolve_budget(budget, pool.num_rows)
                r = max(i for i, rec in enumerate(records) if rec["labeled_after"] <= size)
                rows = state.indices[state.rounds <= r]
                labeled = pool.select(rows)
                target = _train_target(args.target, labeled, test, seed, workdir, **_target_options(settings))
                features = sum(rec.get("timings_s", {}).get("proxy_features", 0.0) for rec in records[1 : r + 1])
                cell_runs.append({
                    "method": method, "strategy": strategy, "seed": seed, "budget": budget,
                    "labeled": int(len(rows)), "selection_s": float(cumulative[r]), "features_s": float(features),
                    "rounds": r, "round_selection_s": _selection_seconds(records[r]), **target, "al_wall_s": wall,
                    "class_counts": _class_counts(labeled), "device": _device_name(),
                })  # fmt: skip
                recall = target.get("target_rare_recall")
                rare = f", rare-class recall {recall:.4f}" if recall is not None else ""
                print(f"[seed {seed}] {method:9s} budget {_label(budget)}: selection {cumulative[r]:7.2f}s "
                      f"({r} queries), target accuracy {target['target_accuracy']:.4f}, "
                      f"macro-F1 {target['target_macro_f1']:.4f}{rare}", flush=True)  # fmt: skip
            shutil.rmtree(out, ignore_errors=True)
            checkpoint.put(seed, method, cell_runs, scores=first_scores[method],
                           added=np.array(sorted(added[method]), dtype=np.int64))  # fmt: skip
            runs.extend(cell_runs)
        for method, (*_, strategy) in methods.items():
            base = _baseline_for(method, strategy, methods)
            if base is None or method == base:
                continue
            row = {"method": method, "seed": seed, "baseline": base,
                   "jaccard_added_vs_baseline": _jaccard(added[method], added[base])}  # fmt: skip
            if _score_based(strategy) and _score_based(methods[base][2]):
                row["spearman_first_query"] = _spearman(first_scores[method], first_scores[base])
            runs.append(row)
    return {"budgets": budgets, "runs": runs}


def _baseline_for(method: str, strategy: str, methods) -> str | None:
    """The baseline a method is compared with: the target selecting with the same strategy where that ran, else plain
    ``baseline``, else any baseline (``None`` where none ran)."""
    baselines = [m for m in methods if m.partition("+")[0] == "baseline"]
    if method in baselines:
        return None
    for name in (f"baseline+{strategy}", "baseline"):
        if name in baselines:
            return name
    return baselines[0] if baselines else None


def _compared_baseline(al: dict, method: str) -> str | None:
    """The baseline ``method``'s results are compared with (`_baseline_for`, by the strategy its runs recorded)."""
    strategy = next((r.get("strategy") for r in al["runs"] if r["method"] == method), None)
    return _baseline_for(method, strategy or "", _methods_in(al))


def _score_based(strategy: str) -> bool:
    """Whether a strategy's round scores rank rows on their own (margin, entropy, ...), rather than its pick order."""
    from svp_hf.strategies import STRATEGIES, ScoreStrategy

    return issubclass(STRATEGIES.get(strategy), ScoreStrategy)


def _learner(pool, out: Path, config, min_per_class: int):
    """An `ActiveLearner`; with ``min_per_class`` K > 0 its initial set is `per_class_initial` (drawn in the place of
    the stratified draw, which ``config.stratified`` selects)."""
    from svp_hf.active import ActiveLearner

    if not min_per_class:
        return ActiveLearner(pool, out, config)

    class PerClassInitial(ActiveLearner):
        def _stratified_initial(self, n: int, seed: int) -> np.ndarray:
            return per_class_initial(self.task.encode_labels(self.pool), n, min_per_class, seed)

    return PerClassInitial(pool, out, config)


def per_class_initial(labels: np.ndarray, n: int, k: int, seed: int) -> np.ndarray:
    """``n`` row indices: ``k`` random rows of every class (all of a class with fewer), then the rest at random from
    the other rows, in random order; the same labels, n, k and seed give the same rows."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    picked = [rng.choice(np.flatnonzero(labels == c), size=min(k, int((labels == c).sum())), replace=False)
              for c in np.unique(labels[labels >= 0])]  # fmt: skip
    picked = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    if picked.size > n:
        raise SystemExit(f"an initial set of {n} rows cannot hold {k} rows of each class ({picked.size} rows)")
    rest = np.setdiff1d(np.arange(labels.size), picked)
    extra = rng.choice(rest, size=n - picked.size, replace=False)
    return rng.permutation(np.concatenate([picked, extra])).astype(np.int64)


def initial_size(initial, pool_size: int, num_classes: int, min_per_class: str | int) -> tuple[int, int]:
    """``(initial rows, K)`` under the per-class rule: K = ``min_per_class``, or with ``"auto"`` 2 when the initial
    set averages fewer than 10 rows per class, else 0; the initial set grows to K x classes rows when smaller."""
    from svp_hf.data import check_budget, resolve_budget

    n0 = resolve_budget(check_budget(initial), pool_size)
    if str(min_per_class) == "auto":
        k = 2 if n0 < 10 * num_classes else 0
    else:
        try:
            k = int(min_per_class)
        except ValueError:
            raise SystemExit(f"--min-per-class takes a count or auto, got {min_per_class!r}") from None
        if k < 0:
            raise SystemExit(f"--min-per-class must be >= 0, got {k}")
    return max(n0, k * num_classes), k


def _label(budget) -> str:
    """A budget as the tables show it: ``10%`` for a fraction, ``200`` for a count."""
    return f"{budget:.0%}" if isinstance(budget, float) else str(budget)


def _class_counts(dataset) -> dict[str, int]:
    if "label" not in dataset.column_names:
        return {}
    values, counts = np.unique(np.asarray(dataset["label"]), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


# the core-set table's (strategy, proxy, order) rows; k-centers runs on the frozen MiniLM encoder's embeddings. The
# "easiest" rows keep the rows the proxy finds easiest (the strategies' order="easiest"): at 30% of a pool the hardest
# rows trained the target below random (BENCHMARKS "Core-set with the pretrained target")
CORESET_SELECTORS = (
    ("forgetting_events", "fasttext", "hardest"),
    ("entropy", "fasttext", "hardest"),
    ("random", "fasttext", "hardest"),
    ("kcenters", "embedding", "hardest"),
    ("forgetting_events", "fasttext", "easiest"),
    ("entropy", "fasttext", "easiest"),
)


def _coreset_method(strategy: str, proxy: str, order: str = "hardest") -> str:
    """A core-set row's method name (random names the proxy setting it was passed, though it trains none)."""
    return f"{strategy}{', easiest first' if order == 'easiest' else ''} ({proxy})"


def run_coreset(args, settings, pool, test, workdir: Path, checkpoint: _Checkpoint) -> dict:
    import svp_hf

    rows = []
    for seed in settings["seeds"]:
        full = checkpoint.get(seed, "coreset-full")
        if full is None:
            target = _train_target(args.target, pool, test, seed, workdir, **_target_options(settings))
            full = [{"method": "full data", "seed": seed, "keep": 1.0, **_scores(target), "selection_s": 0.0,
                     "end_to_end_s": target["target_train_s"], "device": _device_name()}]  # fmt: skip
            checkpoint.put(seed, "coreset-full", full)
        rows.extend(full)
        full_s = full[0]["end_to_end_s"]
        for keep in settings["keep"]:
            for strategy, proxy, order in CORESET_SELECTORS:
                easiest = order == "easiest"  # hardest-first is each strategy's default: no suffix, no kwargs
                cell = f"coreset-{keep}-{strategy}" + ("-easiest" if easiest else "")
                done = checkpoint.get(seed, cell)
                if done is None:
                    t0 = time.perf_counter()
                    ordered = {"strategy_kwargs": {"order": order}} if easiest else {}
                    kept = svp_hf.coreset(pool, keep=keep, proxy=proxy, strategy=strategy, seed=seed, **ordered)
                    kept = kept.dataset
                    selection_s = time.perf_counter() - t0
                    target = _train_target(args.target, kept, test, seed, workdir, **_target_options(settings))
                    train_s = target["target_train_s"]
                    done = [{"method": _coreset_method(strategy, proxy, order), "seed": seed, "keep": keep,
                             **_scores(target), "selection_s": selection_s, "end_to_end_s": selection_s + train_s,
                             "full_data_s": full_s, "device": _device_name()}]  # fmt: skip
                    checkpoint.put(seed, cell, done)
                    print(f"[seed {seed}] core-set {strategy:17s} {order} keep {keep:.0%}: accuracy "
                          f"{target['target_accuracy']:.4f}, end to end {selection_s + train_s:.1f}s vs full "
                          f"{full_s:.1f}s", flush=True)  # fmt: skip
                rows.extend(done)
    return {"runs": rows}


def _scores(target: dict) -> dict:
    return {k: v for k, v in target.items() if k != "target_train_s"}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic)


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


# the target's metrics in a run row, and their names in the summary (older results files have only accuracy)
METRICS = {"target_accuracy": "accuracy", "target_macro_f1": "macro_f1", "target_rare_recall": "rare_recall"}


def _methods_in(al: dict) -> list[str]:
    return list(dict.fromkeys(r["method"] for r in al["runs"] if "budget" in r))


def summarize(al: dict) -> dict:
    """Mean ± std per method and budget of each target metric recorded, and the speed-up over the baseline (the one
    with the same strategy where it ran)."""
    table = {}
    for method in _methods_in(al):
        for budget in al["budgets"]:
            rows = [r for r in al["runs"] if r["method"] == method and r.get("budget") == budget]
            if not rows:
                continue
            row = {}
            for key, name in METRICS.items():
                if all(key in r for r in rows):
                    values = np.array([r[key] for r in rows], dtype=float)
                    row[f"{name}_mean"], row[f"{name}_std"] = values.mean(), values.std()
            row["selection_s"] = float(np.mean([r["selection_s"] for r in rows]))
            table[(method, budget)] = row
    for (method, budget), row in table.items():
        base = _compared_baseline(al, method)
        base = table.get((base, budget)) if base is not None else None
        if method.partition("+")[0] == "baseline":
            base = row
        if base is None:  # --methods without the baseline: accuracies only
            row["speedup"], row["gap_points"] = float("nan"), float("nan")
            continue
        row["speedup"] = base["selection_s"] / row["selection_s"] if row["selection_s"] > 0 else float("inf")
        row["gap_points"] = 100 * (base["accuracy_mean"] - row["accuracy_mean"])
    return table


def summarize_coreset(core: dict) -> dict:
    """Mean ± std of the target's accuracy and the end-to-end time per (method, fraction kept), and the accuracy's
    per-seed (paired) difference in points from random at the same fraction and from the full pool (mean, std)."""
    table = {}
    runs = core["runs"]
    full = np.mean([r["end_to_end_s"] for r in runs if r["method"] == "full data"])
    by_seed = {}  # (method, keep) -> {seed: accuracy}
    for r in runs:
        by_seed.setdefault((r["method"], r["keep"]), {})[r["seed"]] = r["target_accuracy"]
    random = _coreset_method("random", "fasttext")
    for key in by_seed:
        rows = [r for r in runs if (r["method"], r["keep"]) == key]
        acc = np.array([r["target_accuracy"] for r in rows])
        seconds = float(np.mean([r["end_to_end_s"] for r in rows]))
        table[key] = {"accuracy_mean": acc.mean(), "accuracy_std": acc.std(), "end_to_end_s": seconds,
                      "full_data_s": full}  # fmt: skip
        for name, other in (("vs_random", (random, key[1])), ("vs_full", ("full data", 1.0))):
            diff = _paired(by_seed[key], by_seed.get(other, {})) if other != key else None
            if diff is not None:
                table[key][name] = diff
    return table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, axes, path: str) -> list[str]:
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return [path]


def plot(al: dict, table: dict, path_prefix: Path, title: str) -> list[str]:
    plt = _pyplot()
    budgets = al["budgets"]
    counts = all(isinstance(b, int) for b in budgets)
    xs = list(budgets) if counts else [100 * b for b in budgets]
    xlabel = "labeled rows" if counts else "labeled budget (% of pool)"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for method in [m for m in _methods_in(al) if (m, budgets[0]) in table]:
        means = [table[(method, b)]["accuracy_mean"] for b in budgets]
        stds = [table[(method, b)]["accuracy_std"] for b in budgets]
        ax1.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=method)
        if method != "random":
            per_round = [
                np.mean([r["round_selection_s"] for r in al["runs"] if r["method"] == method and r.get("budget") == b])
                for b in budgets
            ]
            ax2.plot(xs, per_round, marker="o", label=method)
    ax1.set(xlabel=xlabel, ylabel="target test accuracy", title=f"{title}: target accuracy")
    ax2.set(xlabel=xlabel, ylabel="seconds", yscale="log", title="selection time per round")
    if counts:
        ax1.set_xscale("log", base=2)
        ax2.set_xscale("log", base=2)
    return _save(fig, (ax1, ax2), f"{path_prefix}.png")


def plot_coreset(core: dict, path_prefix: Path, title: str) -> list[str]:
    table = summarize_coreset(core)
    full = table[("full data", 1.0)]
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    for method in dict.fromkeys(m for m, _ in table if m != "full data"):
        keeps = sorted(k for m, k in table if m == method)
        means = [table[(method, k)]["accuracy_mean"] for k in keeps]
        stds = [table[(method, k)]["accuracy_std"] for k in keeps]
        ax.errorbar([100 * k for k in keeps], means, yerr=stds, marker="o", capsize=3, label=method)
    ax.axhline(full["accuracy_mean"], color="black", linestyle="--", label="full data")
    ax.set(xlabel="kept (% of pool)", ylabel="target test accuracy", title=f"{title}: core-set selection")
    return _save(fig, (ax,), f"{path_prefix}_coreset.png")


SELECTOR_NAMES = {
    "fasttext": "fastText",
    "tfidf": "TF-IDF + logistic regression",
    "hybrid": "hybrid (TF-IDF + MiniLM)",
    "embedding": "embedding (frozen MiniLM)",
}


def _selector_name(method: str, target: str) -> str:
    selector, _, strategy = method.partition("+")
    if selector == "baseline":
        name = f"{target} (baseline: target selecting for itself)"
    else:
        name = "TF-IDF" if selector == "tfidf" and strategy else SELECTOR_NAMES.get(selector, selector)
    return f"{name}, {strategy}" if strategy else name


def _metric_table(table, methods, budgets, metric: str) -> list[str]:
    lines = [f"| selected by | {' | '.join(_label(b) for b in budgets)} |", "|---" * (len(budgets) + 1) + "|"]
    for method in methods:
        if f"{metric}_mean" in table.get((method, budgets[0]), {}):
            cells = " | ".join(
                f"{100 * table[(method, b)][f'{metric}_mean']:.1f} ± {100 * table[(method, b)][f'{metric}_std']:.1f}"
                for b in budgets
            )
            lines.append(f"| {method} | {cells} |")
    return lines


def report_markdown(result: dict) -> str:
    """The result file as markdown tables: speed-up (the paper's table shape), accuracy, macro-F1 and rare-class
    recall where recorded, agreement, core-set."""
    lines = []
    al = result["active_learning"]
    table = summarize(al) if al and al["runs"] else {}
    seeds = ", ".join(str(s) for s in result["seeds"])
    if table:
        budgets = al["budgets"]
        methods = [m for m in _methods_in(al) if (m, budgets[0]) in table]
        head = " | ".join(_label(b) for b in budgets)
        rule = "|---" * (len(budgets) + 2) + "|"
        lines += [f"Data-selection time in seconds (speed-up over the baseline), mean over seeds {seeds}:", "",
                  f"| dataset | selection model | {head} |", rule]  # fmt: skip
        for method in methods:
            if method != "random":
                cells = " | ".join(
                    f"{table[(method, b)]['selection_s']:.1f} s ({table[(method, b)]['speedup']:.1f}x)"
                    for b in budgets
                )
                lines.append(f"| {result['dataset']} | {_selector_name(method, result['target'])} | {cells} |")
        split = result.get("eval_split", "test")
        lines += ["", f"Target ({result['target']}) {split} accuracy, % (mean ± std over seeds {seeds}):", ""]
        lines += _metric_table(table, methods, budgets, "accuracy")
        if any("macro_f1_mean" in row for row in table.values()):
            lines += ["", f"Target ({result['target']}) {split} macro-F1, % (mean ± std over seeds {seeds}):", ""]
            lines += _metric_table(table, methods, budgets, "macro_f1")
        rare = result.get("imbalance")
        if rare and any("rare_recall_mean" in row for row in table.values()):
            lines += ["", f"Recall of the rare class ({rare['class']}, cut to {rare['fraction']:g} of its pool "
                      f"rows: {rare['pool_rows']} rows) on the {split} split, % (mean ± std over seeds {seeds}):",
                      ""]  # fmt: skip
            lines += _metric_table(table, methods, budgets, "rare_recall")
            lines += ["", f"Rows of the rare class in the labeled set (mean over seeds {seeds}):", "",
                      f"| selected by | {head} |", "|---" * (len(budgets) + 1) + "|"]  # fmt: skip
            for method in methods:
                counts = [
                    np.mean([r["class_counts"].get(str(rare["id"]), 0) for r in al["runs"]
                             if r["method"] == method and r.get("budget") == b])
                    for b in budgets
                ]  # fmt: skip
                lines.append(f"| {method} | {' | '.join(f'{c:.1f}' for c in counts)} |")
        lines.append("")
        for method in methods:
            rows = [r for r in al["runs"] if r["method"] == method and "jaccard_added_vs_baseline" in r]
            if rows:
                rho = [r["spearman_first_query"] for r in rows if "spearman_first_query" in r]
                rho_text = f"Spearman of first-query scores {np.mean(rho):.2f}, " if rho else ""
                jac = np.mean([r["jaccard_added_vs_baseline"] for r in rows])
                base = rows[0].get("baseline", "baseline")
                lines.append(f"- {method} vs {base}: {rho_text}Jaccard of the added rows {jac:.2f}")
    if result.get("coreset"):
        core = summarize_coreset(result["coreset"])
        full_s = core[("full data", 1.0)]["end_to_end_s"]
        lines += [
            "",
            f"Core-set selection: target test accuracy % (mean ± std over seeds {seeds}) and end-to-end time (proxy +"
            f" selection + target training) against training on the full pool ({full_s:.0f} s):",
            "",
            "| kept by | kept | target accuracy | vs random (paired) | vs full data (paired) | end-to-end s "
            "| speed-up end to end |",
            "|---|---|---|---|---|---|---|",
        ]
        for (method, keep), row in core.items():
            accuracy = f"{100 * row['accuracy_mean']:.1f} ± {100 * row['accuracy_std']:.1f}"
            paired = [_pm(row[k]) if k in row else "–" for k in ("vs_random", "vs_full")]
            seconds = row["end_to_end_s"]
            lines.append(f"| {method} | {keep:.0%} | {accuracy} | {' | '.join(paired)} | {seconds:.0f} | "
                         f"{full_s / seconds:.2f}x |")  # fmt: skip
    return "\n".join(lines)


# the aim the verdict measures against: within this many points of the target selecting for itself, this much faster
AIM_POINTS, AIM_SPEEDUP = 1.0, 20.0


def verdict_markdown(results: list[dict]) -> str:
    """One row per pool, proxy method and budget: the target's accuracy on the proxy's picks, its difference from the
    target selecting for itself (the baseline with the same strategy) and from random, and the selection speed-up,
    each read against the aim (within ``AIM_POINTS`` of self-selection, above random, ``AIM_SPEEDUP`` x faster). A
    difference is the mean over seeds of the per-seed (paired) difference, ± its std: how much of it is the seeds."""
    lines = [
        f"| pool | selected by | budget | accuracy % | within {AIM_POINTS:g} point of self-selected? | above random? "
        "| speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        al = result["active_learning"]
        table = summarize(al) if al and al["runs"] else {}
        pool = result["dataset"]
        if result.get("imbalance"):
            pool += f" ({result['imbalance']['class']} cut to {result['imbalance']['fraction']:g})"
        for method in _methods_in(al or {"runs": []}):
            if method == "random" or method.partition("+")[0] == "baseline":
                continue
            for budget in al["budgets"]:
                row = table.get((method, budget))
                if row is None:
                    continue
                gap = _paired_points(al, method, _compared_baseline(al, method), budget)
                lift = _paired_points(al, method, "random", budget)
                self_text = "no baseline" if gap is None else f"{_yes(gap[0] >= -AIM_POINTS)} ({_pm(gap)})"
                random_text = "no random" if lift is None else f"{_yes(lift[0] > 0)} ({_pm(lift)})"
                speed = "–" if np.isnan(row["speedup"]) else f"{row['speedup']:.1f}x"
                if speed != "–" and row["speedup"] >= AIM_SPEEDUP:
                    speed += f" (≥ {AIM_SPEEDUP:g}x)"
                lines.append(f"| {pool} | {method} | {_label(budget)} | {100 * row['accuracy_mean']:.1f} | "
                             f"{self_text} | {random_text} | {speed} |")  # fmt: skip
    return "\n".join(lines)


def _paired_points(al: dict, method: str, other: str | None, budget) -> tuple[float, float] | None:
    """Mean and std over the seeds both ran of ``method``'s target accuracy minus ``other``'s, in points."""
    if other is None:
        return None
    acc = {(r["method"], r["seed"]): r["target_accuracy"] for r in al["runs"] if r.get("budget") == budget}
    return _paired(*({seed: a for (m, seed), a in acc.items() if m == name} for name in (method, other)))


def _paired(mine: dict, theirs: dict) -> tuple[float, float] | None:
    """Mean and std, in points, of ``mine[seed] - theirs[seed]`` (accuracies by seed) over the seeds both have."""
    diff = np.array([100 * (mine[seed] - theirs[seed]) for seed in mine if seed in theirs])
    return (float(diff.mean()), float(diff.std())) if diff.size else None


def _pm(value: tuple[float, float]) -> str:
    return f"{value[0]:+.1f} ± {value[1]:.1f}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _read_results(path: str, flag: str) -> dict:
    """A results file this harness wrote; one that is missing or not such a file is a message naming it."""
    import json

    try:
        result = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"{flag} {path}: no such file (a results .json that --out wrote)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SystemExit(f"{flag} {path}: not a results file ({err})") from None
    if not isinstance(result, dict) or "active_learning" not in result:
        raise SystemExit(f"{flag} {path}: not a results file of this harness (no active_learning entry)")
    return result


def report(path: str) -> None:
    """Print a results file as markdown and redraw its plots (``--report FILE``)."""
    result = _read_results(path, "--report")
    prefix = Path(path).with_suffix("")
    title = f"{result['dataset']} ({result['target']})"
    al = result["active_learning"]
    if al and al["runs"]:
        plot(al, summarize(al), prefix, title)
    if result.get("coreset"):
        plot_coreset(result["coreset"], prefix, title)
    split = result.get("eval_split", "test")
    print(f"`{result['command']}` ({result['machine']}; {result['wall_s'] / 60:.0f} min; pool {result['pool_rows']} "
          f"rows, {split} {result['test_rows']} rows, strategy {result['strategy']})\n")  # fmt: skip
    print(report_markdown(result))


def main(argv: list[str] | None = None) -> dict:
    args = make_parser().parse_args(argv)
    if args.report:
        report(args.report)
        return {}
    if args.verdict:
        print(verdict_markdown([_read_results(p, "--verdict") for p in args.verdict]))
        return {}
    smoke = args.mode == "quick" and args.target == "minilm"  # --quick given, with the pretrained target
    args.mode = args.mode or "quick"
    logging.disable(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    settings = dict(MODES[args.mode])
    if smoke:
        settings.update(pool=QUICK_PRETRAINED["pool"], test=QUICK_PRETRAINED["test"],
                        min_steps=QUICK_PRETRAINED["min_steps"])  # fmt: skip
        if args.methods is None:
            args.methods = ",".join(QUICK_PRETRAINED["methods"])
    if args.seeds:
        settings["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.budgets:
        settings["budgets"] = [_budget(b) for b in args.budgets.split(",") if b.strip()]
    if args.keep:
        settings["keep"] = _fractions(args.keep, "--keep")
    methods = _methods(args)  # unknown names stop the run before any work
    name = Path(args.dataset.rstrip("/")).name
    t_start = time.perf_counter()
    pool, test = _load(args, settings)
    from svp_hf.data import TextClassificationTask, resolve_budget

    task = TextClassificationTask.from_dataset(pool)
    n0, k = initial_size(args.initial, pool.num_rows, task.num_labels, args.min_per_class)
    budgets = settings["budgets"]
    sizes = [resolve_budget(b, pool.num_rows) for b in budgets]
    if sizes[0] <= n0 or sizes != sorted(set(sizes)):
        raise SystemExit(f"budgets must grow past the initial set: initial {n0} rows, budgets {sizes} rows")
    settings.update(initial=n0, min_per_class=k, rare_class=None)
    imbalanced = None
    if args.imbalance:
        rare = _class_id(task.label_names, _parse_imbalance(args.imbalance)[0])
        settings["rare_class"] = rare
        imbalanced = {"class": str(task.label_names[rare]), "id": rare,
                      "fraction": _parse_imbalance(args.imbalance)[1], "seed": IMBALANCE_SEED,
                      "pool_rows": int((task.encode_labels(pool) == rare).sum())}  # fmt: skip
    each = f" ({k} of each class)" if k else ""
    cut = f"; {imbalanced['class']} cut to {imbalanced['pool_rows']} rows" if imbalanced else ""
    print(
        f"{name}: pool {pool.num_rows} rows, {args.eval_split} {test.num_rows} rows, target {args.target}, "
        f"mode {args.mode}; initial {n0} rows{each}, budgets {', '.join(_label(b) for b in budgets)}{cut}"
    )
    out = Path(args.out) if args.out else RESULTS / f"svp_speedup_{name}_{args.target}_{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    used = {spec[0] for spec in methods.values()}
    checkpoint = _Checkpoint(out, {
        "dataset": str(Path(args.dataset).resolve()), "pool_rows": pool.num_rows, "test_rows": test.num_rows,
        **({} if args.eval_split == "test" else {"eval_split": args.eval_split}),  # older checkpoints had no split
        **({"proxy_words": args.proxy_words} if args.proxy_words else {}),
        # settings older checkpoints lacked are keyed only when they differ from what those runs did
        **({"initial": n0, "min_per_class": k} if k or args.initial != "0.02" else {}),
        **({"imbalance": imbalanced} if imbalanced else {}),
        **({"min_steps": settings["min_steps"]} if "min_steps" in settings else {}),
        "target": args.target, "recipe": TARGETS[args.target],
        **({"head_probe": _head_probe()} if "head_init" in TARGETS[args.target] else {}),
        "proxies": {**PROXIES, **{m: v for m, v in NEWER_PROXIES.items() if m in used}}, "strategy": args.strategy,
        "batch_size": args.batch_size, "budgets": budgets,
    })  # fmt: skip
    for other in args.cells_from:
        print(f"--cells-from {other}: {checkpoint.absorb(Path(other))} cells taken", flush=True)
    with tempfile.TemporaryDirectory(prefix="svp-speedup-") as tmp:
        al = run_active_learning(args, settings, pool, test, Path(tmp), checkpoint)
        core = run_coreset(args, settings, pool, test, Path(tmp), checkpoint) if args.coreset else None
    table = summarize(al)
    core_table = summarize_coreset(core) if core else {}
    result = {
        "command": "python -m benchmarks.svp_speedup " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
        + ("" if _device_name() == "cpu" else f", {_device_name()}"),
        "dataset": name, "pool_rows": pool.num_rows, "test_rows": test.num_rows, "eval_split": args.eval_split,
        "proxy_words": args.proxy_words, "target": args.target,
        "strategy": args.strategy, "mode": args.mode, "seeds": settings["seeds"],
        "initial_rows": n0, "min_per_class": k, "imbalance": imbalanced,
        "active_learning": al,
        "summary": [{"method": m, "budget": b, **{k: float(v) for k, v in r.items()}} for (m, b), r in table.items()],
        "coreset": core,
        "coreset_summary": [{"method": m, "keep": k, **v} for (m, k), v in core_table.items()] or None,
        "wall_s": time.perf_counter() - t_start,
    }  # fmt: skip
    from svp_hf.io import write_json_atomic

    write_json_atomic(out, result)
    try:
        title = f"{name} ({args.target})"
        result["plots"] = plot(al, table, out.with_suffix(""), title) if table else []
        result["plots"] += plot_coreset(core, out.with_suffix(""), title) if core else []
    except ImportError:
        result["plots"] = []
    if table:
        print(f"\n{'method':24s} budget  selection s  speed-up  target acc (mean ± std)  macro-F1  gap (points)")
    for (method, budget), row in table.items():
        speedup = "      -" if method == "random" else f"{row['speedup']:6.1f}x"
        f1 = f"{row['macro_f1_mean']:.4f}" if "macro_f1_mean" in row else "     -"
        print(f"{method:24s} {_label(budget):>6s}  {row['selection_s']:11.2f}  {speedup}  "
              f"{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}       {f1}    "
              f"{row['gap_points']:+.1f}")  # fmt: skip
    for method in _methods_in(al):
        rows = [r for r in al["runs"] if r["method"] == method and "jaccard_added_vs_baseline" in r]
        if not rows:
            continue
        rho = [r["spearman_first_query"] for r in rows if "spearman_first_query" in r]
        jac = np.mean([r["jaccard_added_vs_baseline"] for r in rows])
        rho_text = f"Spearman vs baseline scores (first query) {np.mean(rho):.2f}, " if rho else ""
        print(f"{method:24s} {rho_text}Jaccard of added rows vs {rows[0]['baseline']} {jac:.2f}")
    if core:
        print("\ncore-set         keep  target acc (mean ± std)  end-to-end s (full data s)")
        for (method, keep), row in core_table.items():
            print(f"{method:24s} {keep:4.0%}  {row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}       "
                  f"{row['end_to_end_s']:8.1f} ({row['full_data_s']:.1f})")  # fmt: skip
    print(f"results: {out}")
    if not args.keep_cells:
        checkpoint.remove()
    last = al["budgets"][-1]
    proxies = [m for m in methods if m == "fasttext"] or [m for m in methods if m.partition("+")[0] in PROXY_SELECTORS]
    base = _baseline_for(proxies[0], methods[proxies[0]][2], methods) if proxies else None
    if base and (proxies[0], last) in table and (base, last) in table:
        named = "" if (proxies[0], base) == ("fasttext", "baseline") else f" ({proxies[0]} vs {base})"
        print(f"selection speed-up: {table[(proxies[0], last)]['speedup']:.1f}x{named}")
        print(f"target accuracy gap vs baseline: {table[(proxies[0], last)]['gap_points']:.1f} points{named}")
    return result


if __name__ == "__main__":
    main()
