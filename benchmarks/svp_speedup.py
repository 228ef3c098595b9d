"""Selection via Proxy, measured: how much faster is data selection with a cheap proxy than with the target selecting
for itself, and is the target trained on the proxy's selection as accurate?

For one dataset, simulated active learning (random initial 2% of the pool, then one query per budget step: the
paper's schedule) runs with
  (a) ``baseline``: the target architecture as its own selection model (trained with the target's own recipe),
  (b) ``fasttext``: the fastText proxy,
  (c) ``tfidf``: a cheaper proxy (TF-IDF + logistic regression),
  (d) ``random``: random selection,
then the target is trained from scratch on each labeled set at each budget and evaluated on the test split.
Reported: data-selection time (proxy training + scoring + ranking, summed over the rounds up to each budget) and its
speed-up over (a); target accuracy at each budget (mean ± std over seeds); Spearman rank correlation between each
proxy's and the baseline's scores of the same pool in the first query (same labeled set); Jaccard overlap of the rows
each method added with the rows the baseline added. ``--coreset`` adds core-set selection: the target trained on
30/50/70% of the pool kept by forgetting events / entropy / random against the full pool, with end-to-end time.

    python -m benchmarks.svp_speedup --dataset ../shared/data/ag_news --quick
    python -m benchmarks.svp_speedup --dataset ../shared/data/ag_news --full --coreset

``--quick`` (under 5 minutes on 2 CPU cores) ends with two lines:
``selection speed-up: X.Xx`` (fastText vs. baseline, at the largest budget) and
``target accuracy gap vs baseline: Y.Y points`` (baseline minus fastText at the largest budget; positive = proxy
worse).
Results go to ``benchmarks/results/svp_speedup_<dataset>_<target>_<mode>.json`` with plots beside it. Every finished
(seed, method) cell is saved in ``<results>.partial/`` as it ends: an interrupted run started again with the same
settings resumes from there. ``--report RESULTS_JSON`` prints a results file as the markdown tables of BENCHMARKS.md
(the paper's speed-up table shape, accuracy, agreement, core-set) and redraws its plots. ``--methods`` runs a subset
(e.g. ``fasttext,random`` to compare strategies without the slow baseline); ``--batch-size`` changes the query size
(default: one query per budget step, as in the paper). Targets are evaluated on the test split, or on validation
where a dataset has none (SST-2); ``--eval-split`` picks another. ``--proxy-words N`` sets the proxies'
``max_words``: they read only the first N words of each row, about what a short-input target reads.
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
PROXIES = {"fasttext": ("fasttext", {}), "tfidf": ("tfidf", {})}


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
    p.add_argument("--budgets", default=None, help="override the mode's budgets, e.g. 0.1,0.2,0.3")
    p.add_argument(
        "--batch-size", default=None,
        help="rows per query: none (default, the paper's one query per budget step), auto, a fraction or a count",
    )  # fmt: skip
    p.add_argument("--methods", default=None, help=f"comma-separated subset of {', '.join(METHODS)} (default: all)")
    p.add_argument(
        "--proxy-words", type=int, default=None, metavar="N",
        help="the proxies (fasttext, tfidf) read only the first N words of each text (their max_words), about what a "
        "target with a short max_length sees; the target and the baseline read the rows as before",
    )  # fmt: skip
    p.add_argument("--coreset", action="store_true", help="also measure core-set selection")
    p.add_argument("--report", metavar="RESULTS_JSON", help="print a results file as markdown tables, redraw plots")
    p.add_argument(
        "--out", default=None, help="results JSON (default: benchmarks/results/svp_speedup_<ds>_<mode>.json)"
    )
    p.set_defaults(mode="quick")
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
    return pool, test


def _selection_seconds(record: dict) -> float:
    t = record.get("timings_s", {})
    return float(sum(t.get(k, 0.0) for k in ("proxy_fit", "proxy_score", "strategy")))


def _train_target(target: str, train, test, seed: int, workdir: Path) -> tuple[float, float]:
    from svp_hf.training import train_target

    spec = TARGETS[target]
    out = workdir / f"target-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    metrics = train_target(
        train, target, out, eval_dataset=test, max_length=spec["max_length"], overwrite=True,
        training_args={**spec["train"], "seed": seed, "save_strategy": "no", "eval_strategy": "no",
                       "logging_strategy": "no", "log_level": "error"},
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return float(metrics["eval_accuracy"]), seconds


METHODS = ("baseline", "fasttext", "tfidf", "random")


def _methods(args) -> dict:
    names = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods is not None else list(METHODS)
    unknown = sorted(set(names) - set(METHODS))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    if args.proxy_words is not None and args.proxy_words < 1:
        raise SystemExit(f"--proxy-words must be a positive integer, got {args.proxy_words}")
    cut = {"max_words": args.proxy_words} if args.proxy_words else {}
    proxies = {m: (proxy, {**kwargs, **cut}) for m, (proxy, kwargs) in PROXIES.items()}
    table = {"baseline": TARGETS[args.target]["baseline"], **proxies, "random": ("fasttext", cut)}
    return {m: table[m] for m in METHODS if m in names}


def _batch_size(text: str | None):
    if text is None or text.lower() == "none":
        return None  # the paper's schedule: one query per budget step
    if text.lower() == "auto":
        return "auto"
    return float(text) if "." in text else int(text)


class _Checkpoint:
    """Finished (seed, method) cells of a long run, kept on disk so an interrupted run resumes where it stopped.

    Keyed by everything that changes a cell's result; a run with other settings starts afresh."""

    def __init__(self, path: Path, key: dict):
        import json

        self.dir = path.with_suffix(".partial")
        self.key = json.loads(json.dumps(key))  # as it reads back (tuples become lists)
        self.cells: dict[str, dict] = {}
        index = self.dir / "cells.json"
        if index.exists():
            saved = json.loads(index.read_text())
            if saved.get("key") == self.key:
                self.cells = saved["cells"]
                if self.cells:
                    print(f"resuming: {len(self.cells)} finished cells from {self.dir}", flush=True)

    def get(self, seed: int, cell: str) -> list | None:
        """The cell's result rows, or None when it has not finished."""
        done = self.cells.get(f"{seed}/{cell}")
        return None if done is None else done["runs"]

    def array(self, seed: int, cell: str, name: str) -> np.ndarray:
        return np.load(self.dir / f"{seed}-{cell}-{name}.npy")

    def put(self, seed: int, cell: str, runs: list, **arrays: np.ndarray) -> None:
        from svp_hf.io import write_json_atomic

        self.dir.mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            tmp = self.dir / f".{seed}-{cell}-{name}.npy"
            np.save(tmp, array)
            os.replace(tmp, self.dir / f"{seed}-{cell}-{name}.npy")
        self.cells[f"{seed}/{cell}"] = {"runs": runs}
        write_json_atomic(self.dir / "cells.json", {"key": self.key, "cells": self.cells})

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def run_active_learning(args, settings, pool, test, workdir: Path, checkpoint: _Checkpoint) -> dict:
    from svp_hf.active import ActiveLearner, ActiveLearningConfig
    from svp_hf.data import resolve_budget

    budgets = settings["budgets"]
    methods = _methods(args)
    runs: list = []
    for seed in settings["seeds"]:
        first_scores = {}
        added = {}
        for method, (proxy, kwargs) in methods.items():
            cell_runs = checkpoint.get(seed, method)
            if cell_runs is not None:
                first_scores[method] = checkpoint.array(seed, method, "scores")
                added[method] = set(checkpoint.array(seed, method, "added").tolist())
                runs.extend(cell_runs)
                continue
            config = ActiveLearningConfig(
                proxy=proxy, proxy_kwargs=kwargs, strategy="random" if method == "random" else args.strategy,
                initial=0.02, budgets=budgets, batch_size=_batch_size(args.batch_size), seed=seed,
            )  # fmt: skip
            out = workdir / f"al-{method}-{seed}"
            t0 = time.perf_counter()
            state = ActiveLearner(pool, out, config).run()
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
                accuracy, train_s = _train_target(args.target, labeled, test, seed, workdir)
                cell_runs.append({
                    "method": method, "seed": seed, "budget": budget, "labeled": int(len(rows)),
                    "selection_s": float(cumulative[r]), "rounds": r,
                    "round_selection_s": _selection_seconds(records[r]),
                    "target_accuracy": accuracy, "target_train_s": train_s, "al_wall_s": wall,
                    "class_counts": _class_counts(labeled),
                })  # fmt: skip
                print(f"[seed {seed}] {method:9s} budget {budget:.0%}: selection {cumulative[r]:7.2f}s "
                      f"({r} queries), target accuracy {accuracy:.4f}", flush=True)  # fmt: skip
            shutil.rmtree(out, ignore_errors=True)
            checkpoint.put(seed, method, cell_runs, scores=first_scores[method],
                           added=np.array(sorted(added[method]), dtype=np.int64))  # fmt: skip
            runs.extend(cell_runs)
        for method in methods:
            if method == "baseline" or "baseline" not in methods:
                continue
            row = {"method": method, "seed": seed,
                   "jaccard_added_vs_baseline": _jaccard(added[method], added["baseline"])}  # fmt: skip
            if method != "random":
                row["spearman_first_query"] = _spearman(first_scores[method], first_scores["baseline"])
            runs.append(row)
    return {"budgets": budgets, "runs": runs}


def _class_counts(dataset) -> dict[str, int]:
    if "label" not in dataset.column_names:
        return {}
    values, counts = np.unique(np.asarray(dataset["label"]), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def run_coreset(args, settings, pool, test, workdir: Path, checkpoint: _Checkpoint) -> dict:
    import svp_hf

    rows = []
    for seed in settings["seeds"]:
        full = checkpoint.get(seed, "coreset-full")
        if full is None:
            accuracy, full_s = _train_target(args.target, pool, test, seed, workdir)
            full = [{"method": "full data", "seed": seed, "keep": 1.0, "target_accuracy": accuracy,
                     "end_to_end_s": full_s, "selection_s": 0.0}]  # fmt: skip
            checkpoint.put(seed, "coreset-full", full)
        rows.extend(full)
        full_s = full[0]["end_to_end_s"]
        for keep in settings["keep"]:
            for strategy, proxy in (
                ("forgetting_events", "fasttext"),
                ("entropy", "fasttext"),
                ("random", "fasttext"),
            ):
                cell = f"coreset-{keep}-{strategy}"
                done = checkpoint.get(seed, cell)
                if done is None:
                    t0 = time.perf_counter()
                    kept = svp_hf.coreset(pool, keep=keep, proxy=proxy, strategy=strategy, seed=seed).dataset
                    selection_s = time.perf_counter() - t0
                    accuracy, train_s = _train_target(args.target, kept, test, seed, workdir)
                    done = [{"method": f"{strategy} ({proxy})", "seed": seed, "keep": keep,
                             "target_accuracy": accuracy, "selection_s": selection_s,
                             "end_to_end_s": selection_s + train_s, "full_data_s": full_s}]  # fmt: skip
                    checkpoint.put(seed, cell, done)
                    print(f"[seed {seed}] core-set {strategy:17s} keep {keep:.0%}: accuracy {accuracy:.4f}, "
                          f"end to end {selection_s + train_s:.1f}s vs full {full_s:.1f}s", flush=True)  # fmt: skip
                rows.extend(done)
    return {"runs": rows}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic)


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def summarize(al: dict) -> dict:
    """Mean ± std per method and budget, and the speed-up over the baseline."""
    table = {}
    for method in METHODS:
        for budget in al["budgets"]:
            rows = [r for r in al["runs"] if r["method"] == method and r.get("budget") == budget]
            if not rows:
                continue
            acc = np.array([r["target_accuracy"] for r in rows])
            sel = np.array([r["selection_s"] for r in rows])
            table[(method, budget)] = {
                "accuracy_mean": acc.mean(),
                "accuracy_std": acc.std(),
                "selection_s": sel.mean(),
            }
    for (_, budget), row in table.items():
        base = table.get(("baseline", budget))
        if base is None:  # --methods without the baseline: accuracies only
            row["speedup"], row["gap_points"] = float("nan"), float("nan")
            continue
        row["speedup"] = base["selection_s"] / row["selection_s"] if row["selection_s"] > 0 else float("inf")
        row["gap_points"] = 100 * (base["accuracy_mean"] - row["accuracy_mean"])
    return table


def summarize_coreset(core: dict) -> dict:
    """Mean ± std of the target's accuracy and the end-to-end time per (method, fraction kept)."""
    table = {}
    full = np.mean([r["end_to_end_s"] for r in core["runs"] if r["method"] == "full data"])
    for key in dict.fromkeys((r["method"], r["keep"]) for r in core["runs"]):
        rows = [r for r in core["runs"] if (r["method"], r["keep"]) == key]
        acc = np.array([r["target_accuracy"] for r in rows])
        seconds = float(np.mean([r["end_to_end_s"] for r in rows]))
        table[key] = {"accuracy_mean": acc.mean(), "accuracy_std": acc.std(), "end_to_end_s": seconds,
                      "full_data_s": full}  # fmt: skip
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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for method in [m for m in METHODS if (m, budgets[0]) in table]:
        means = [table[(method, b)]["accuracy_mean"] for b in budgets]
        stds = [table[(method, b)]["accuracy_std"] for b in budgets]
        ax1.errorbar([100 * b for b in budgets], means, yerr=stds, marker="o", capsize=3, label=method)
        if method != "random":
            per_round = [
                np.mean([r["round_selection_s"] for r in al["runs"] if r["method"] == method and r.get("budget") == b])
                for b in budgets
            ]
            ax2.plot([100 * b for b in budgets], per_round, marker="o", label=method)
    ax1.set(xlabel="labeled budget (% of pool)", ylabel="target test accuracy", title=f"{title}: target accuracy")
    ax2.set(xlabel="labeled budget (% of pool)", ylabel="seconds", yscale="log", title="selection time per round")
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


def report_markdown(result: dict) -> str:
    """The result file as markdown tables: speed-up (the paper's table shape), accuracy, agreement, core-set."""
    lines = []
    al = result["active_learning"]
    table = summarize(al) if al and al["runs"] else {}
    seeds = ", ".join(str(s) for s in result["seeds"])
    if table:
        budgets = al["budgets"]
        head = " | ".join(f"{b:.0%}" for b in budgets)
        rule = "|---" * (len(budgets) + 2) + "|"
        lines += [f"Data-selection time in seconds (speed-up over the baseline), mean over seeds {seeds}:", "",
                  f"| dataset | selection model | {head} |", rule]  # fmt: skip
        names = {"baseline": f"{result['target']} (baseline: target selecting for itself)", "fasttext": "fastText",
                 "tfidf": "TF-IDF + logistic regression"}  # fmt: skip
        for method in ("baseline", "fasttext", "tfidf"):
            if (method, budgets[0]) in table:
                cells = " | ".join(
                    f"{table[(method, b)]['selection_s']:.1f} s ({table[(method, b)]['speedup']:.1f}x)"
                    for b in budgets
                )
                lines.append(f"| {result['dataset']} | {names[method]} | {cells} |")
        split = result.get("eval_split", "test")
        lines += ["", f"Target ({result['target']}) {split} accuracy, % (mean ± std over seeds {seeds}):", "",
                  f"| selected by | {head} |", "|---" * (len(budgets) + 1) + "|"]  # fmt: skip
        for method in METHODS:
            if (method, budgets[0]) in table:
                cells = " | ".join(
                    f"{100 * table[(method, b)]['accuracy_mean']:.1f} ± {100 * table[(method, b)]['accuracy_std']:.1f}"
                    for b in budgets
                )
                lines.append(f"| {method} | {cells} |")
        lines.append("")
        for method in ("fasttext", "tfidf", "random"):
            rows = [r for r in al["runs"] if r["method"] == method and "jaccard_added_vs_baseline" in r]
            if rows:
                rho = [r["spearman_first_query"] for r in rows if "spearman_first_query" in r]
                rho_text = f"Spearman of first-query scores {np.mean(rho):.2f}, " if rho else ""
                jac = np.mean([r["jaccard_added_vs_baseline"] for r in rows])
                lines.append(f"- {method} vs baseline: {rho_text}Jaccard of the added rows {jac:.2f}")
    if result.get("coreset"):
        core = summarize_coreset(result["coreset"])
        full_s = core[("full data", 1.0)]["end_to_end_s"]
        lines += [
            "",
            f"Core-set selection: target test accuracy % (mean ± std over seeds {seeds}) and end-to-end time (proxy +"
            f" selection + target training) against training on the full pool ({full_s:.0f} s):",
            "",
            "| kept by | kept | target accuracy | end-to-end s | speed-up end to end |",
            "|---|---|---|---|---|",
        ]
        for (method, keep), row in core.items():
            accuracy = f"{100 * row['accuracy_mean']:.1f} ± {100 * row['accuracy_std']:.1f}"
            seconds = row["end_to_end_s"]
            lines.append(f"| {method} | {keep:.0%} | {accuracy} | {seconds:.0f} | {full_s / seconds:.2f}x |")
    return "\n".join(lines)


def report(path: str) -> None:
    """Print a results file as markdown and redraw its plots (``--report FILE``)."""
    import json

    result = json.loads(Path(path).read_text())
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
    logging.disable(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    settings = dict(MODES[args.mode])
    if args.seeds:
        settings["seeds"] = [int(s) for s in args.seeds.split(",")]
    name = Path(args.dataset.rstrip("/")).name
    t_start = time.perf_counter()
    pool, test = _load(args, settings)
    print(
        f"{name}: pool {pool.num_rows} rows, {args.eval_split} {test.num_rows} rows, target {args.target}, "
        f"mode {args.mode}"
    )
    out = Path(args.out) if args.out else RESULTS / f"svp_speedup_{name}_{args.target}_{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.budgets:
        settings["budgets"] = [float(b) for b in args.budgets.split(",")]
    budgets = settings["budgets"]
    checkpoint = _Checkpoint(out, {
        "dataset": str(Path(args.dataset).resolve()), "pool_rows": pool.num_rows, "test_rows": test.num_rows,
        **({} if args.eval_split == "test" else {"eval_split": args.eval_split}),  # older checkpoints had no split
        **({"proxy_words": args.proxy_words} if args.proxy_words else {}),
        "target": args.target, "recipe": TARGETS[args.target], "proxies": PROXIES, "strategy": args.strategy,
        "batch_size": args.batch_size, "budgets": budgets, "keep": settings["keep"],
    })  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="svp-speedup-") as tmp:
        al = run_active_learning(args, settings, pool, test, Path(tmp), checkpoint)
        core = run_coreset(args, settings, pool, test, Path(tmp), checkpoint) if args.coreset else None
    table = summarize(al)
    core_table = summarize_coreset(core) if core else {}
    result = {
        "command": "python -m benchmarks.svp_speedup " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "dataset": name, "pool_rows": pool.num_rows, "test_rows": test.num_rows, "eval_split": args.eval_split,
        "proxy_words": args.proxy_words, "target": args.target,
        "strategy": args.strategy, "mode": args.mode, "seeds": settings["seeds"],
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
        print("\nmethod     budget  selection s  speed-up  target acc (mean ± std)  gap (points)")
    for (method, budget), row in table.items():
        speedup = "      -" if method == "random" else f"{row['speedup']:6.1f}x"
        print(f"{method:9s}  {budget:5.0%}  {row['selection_s']:11.2f}  {speedup}  "
              f"{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}       {row['gap_points']:+.1f}")  # fmt: skip
    for method in ("fasttext", "tfidf", "random"):
        rows = [r for r in al["runs"] if r["method"] == method and "jaccard_added_vs_baseline" in r]
        if not rows:
            continue
        rho = [r["spearman_first_query"] for r in rows if "spearman_first_query" in r]
        jac = np.mean([r["jaccard_added_vs_baseline"] for r in rows])
        rho_text = f"Spearman vs baseline scores (first query) {np.mean(rho):.2f}, " if rho else ""
        print(f"{method:9s}  {rho_text}Jaccard of added rows vs baseline {jac:.2f}")
    if core:
        print("\ncore-set         keep  target acc (mean ± std)  end-to-end s (full data s)")
        for (method, keep), row in core_table.items():
            print(f"{method:24s} {keep:4.0%}  {row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}       "
                  f"{row['end_to_end_s']:8.1f} ({row['full_data_s']:.1f})")  # fmt: skip
    print(f"results: {out}")
    checkpoint.remove()
    last = al["budgets"][-1]
    if ("fasttext", last) in table and ("baseline", last) in table:
        print(f"selection speed-up: {table[('fasttext', last)]['speedup']:.1f}x")
        print(f"target accuracy gap vs baseline: {table[('fasttext', last)]['gap_points']:.1f} points")
    return result


if __name__ == "__main__":
    main()
