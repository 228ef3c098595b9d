"""svp-hf against small-text: the same active-learning schedule, side by side, on one pool.

Both start from the *same* random initial set (2% of the pool, svp-hf's own seeded draw), then grow the labeled set to
10/20/30/40/50% of the pool in ONE query per budget step (the paper's schedule; svp-hf
``ActiveLearningConfig(batch_size=None)``). At every budget the accuracy on the eval split is that of the model trained
on exactly that many labeled rows: svp-hf's proxy (``proxy_eval_accuracy`` of the round that starts from that many
rows; at the last budget, the proxy fitted on the final labeled set) and small-text's classifier. Selection time is
what choosing the rows cost: svp-hf, the sum of every round's ``timings_s`` (proxy fit + scoring + strategy);
small-text, its classifier fits that preceded a query plus the queries (the JSON also keeps the total with the last
fit, which chooses nothing). One-time costs are kept apart: small-text's TF-IDF vectorization, and svp-hf's pool
features / encodings where the proxy reports them (``timings_s`` keys with ``features`` or ``encod``; each svp-hf cell
starts with an empty feature cache, or with ``--feature-cache DIR`` only the first cell of a pool pays them); so is
svp-hf's ``proxy_check`` (a diagnostic self-check).

svp-hf methods are ``proxy:strategy[:json-proxy-kwargs]`` (``tfidf:margin``, ``fasttext:random``,
``fasttext:margin:{"max_words": 50}``); small-text methods are ``small-text:breaking_ties`` (margin) and
``small-text:random``, with TF-IDF (unigrams, sublinear tf, min_df 2, fitted on the pool) and
``ConfidenceEnhancedLinearSVC``. Proxy or strategy names svp-hf does not know are skipped with a message.

small-text is never a dependency of svp-hf: it runs in its own virtual environment, made once outside the repository,

    python3 -m venv /work/st-venv && /work/st-venv/bin/pip install small-text==1.4.1 pandas pyarrow

through benchmarks/small_text_runner.py as a subprocess (JSON in, JSON out). ``--small-text-python`` names that
environment's python; where it does not exist the small-text rows are skipped with a message.

    python -m benchmarks.vs_small_text --dataset ../shared/data/banking77 --seeds 0 --report \\
        --methods tfidf:margin,tfidf:random,fasttext:margin,fasttext:random,small-text:breaking_ties,small-text:random
    python -m benchmarks.vs_small_text --dataset ../shared/data/banking77 --quick --report   # smoke test, ~1 minute
    python -m benchmarks.vs_small_text --output benchmarks/results/vs_small_text_banking77.json --report-only

Results are resumable cells: one JSON file (default ``benchmarks/results/vs_small_text_<dataset>[_quick].json``);
each (method, seed) cell is written atomically as it finishes and is skipped when already there (``--redo`` runs it
again, keeping the old cell under ``replaced``: for a default that changed since). A file made with
other settings (pool, eval split, schedule) is refused. ``--report`` prints the Markdown table: mean ± std accuracy
(%) over seeds per method and budget, the best small-text row in bold at each budget and each svp-hf row's difference
from it, and mean selection seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script (python benchmarks/vs_small_text.py): import beside it as a package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.small_text_runner import fingerprint  # noqa: E402  one hash on both sides of the subprocess

RESULTS = Path(__file__).resolve().parent / "results"
RUNNER = Path(__file__).resolve().parent / "small_text_runner.py"
DEFAULT_SMALL_TEXT_PYTHON = "/work/st-venv/bin/python"
DEFAULT_METHODS = (
    "tfidf:margin,tfidf:random,fasttext:margin,fasttext:random,small-text:breaking_ties,small-text:random"
)
SMALL_TEXT_STRATEGIES = ("breaking_ties", "random")
# svp-hf timings_s keys that are not selection proper: one-time pool features / encodings (cached by content, paid
# once per pool), and the proxy's self-check (a diagnostic, not needed to select)
ONE_TIME_TIMINGS = ("features", "encod")
DIAGNOSTIC_TIMINGS = ("proxy_check",)
QUICK = {"pool_size": 2000, "seeds": "0", "budgets": "0.1,0.2,0.3"}


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", help="a folder of parquet files (e.g. ../shared/data/banking77)")
    p.add_argument("--split", default="train", help="the pool's split, slicing allowed: train, train[:5000]")
    p.add_argument("--pool-size", type=int, default=None, help="a seeded random subset of the split (rows)")
    p.add_argument("--eval-split", default="test")
    p.add_argument("--eval-size", type=int, default=None, help="a seeded random subset of the eval split (rows)")
    p.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2; --quick: 0)")
    p.add_argument("--methods", default=DEFAULT_METHODS, help="proxy:strategy[:json], small-text:STRATEGY, ...")
    p.add_argument("--initial", default="0.02", help="the random initial set, a fraction or a row count")
    p.add_argument("--budgets", default=None, help="labeled-set sizes (default 0.1,...,0.5; --quick: 0.1,0.2,0.3)")
    p.add_argument("--output", default=None, help="the results JSON")
    p.add_argument("--small-text-python", default=DEFAULT_SMALL_TEXT_PYTHON)
    p.add_argument(
        "--feature-cache",
        metavar="DIR",
        default=None,
        help="keep svp-hf's pool features in DIR across cells and runs (the one-time encoding is then paid by the "
        "first cell only, and reported there); default: every cell starts with an empty cache",
    )
    p.add_argument("--quick", action="store_true", help="smoke test: a 2,000-row pool, one seed, budgets 10-30%%")
    p.add_argument(
        "--redo", action="store_true",
        help="run the --methods cells again even where done before (after a default changed); each old cell is kept "
        "under 'replaced' in the results file, and is replaced only once its new run finishes",
    )  # fmt: skip
    p.add_argument("--report", action="store_true", help="print the Markdown table at the end")
    p.add_argument("--report-only", action="store_true", help="print the table of --output; run nothing")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    return p


# -- methods --------------------------------------------------------------------------------------------------------
def split_methods(text: str) -> list[str]:
    """Split on the commas outside braces, so that JSON proxy kwargs may hold commas."""
    items, depth, current = [], 0, []
    for ch in text:
        depth += (ch in "{[") - (ch in "}]")
        if ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [m for m in items if m]


def parse_method(spec: str) -> dict:
    """``proxy:strategy[:json]`` or ``small-text:STRATEGY`` -> a description; raises ValueError when malformed."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"method {spec!r}: use proxy:strategy[:json-proxy-kwargs] or small-text:STRATEGY")
    if parts[0] in ("small-text", "small_text"):
        if len(parts) > 2:
            raise ValueError(f"method {spec!r}: small-text methods take no settings")
        return {"name": f"small-text:{parts[1]}", "kind": "small-text", "strategy": parts[1]}
    kwargs = {}
    if len(parts) == 3:
        try:
            kwargs = json.loads(parts[2])
        except json.JSONDecodeError as err:
            raise ValueError(f"method {spec!r}: proxy kwargs are not JSON ({err.msg})") from None
        if not isinstance(kwargs, dict):
            raise ValueError(f"method {spec!r}: proxy kwargs must be a JSON object")
    name = f"{parts[0]}:{parts[1]}" + (f":{json.dumps(kwargs, sort_keys=True)}" if kwargs else "")
    return {"name": name, "kind": "svp-hf", "proxy": parts[0], "strategy": parts[1], "proxy_kwargs": kwargs}


def unavailable(method: dict, small_text_python: str) -> str | None:
    """Why ``method`` cannot run here (a message), or None."""
    if method["kind"] == "small-text":
        if method["strategy"] not in SMALL_TEXT_STRATEGIES:
            return f"unknown small-text strategy {method['strategy']!r} (use {', '.join(SMALL_TEXT_STRATEGIES)})"
        if not Path(small_text_python).exists():
            return (
                f"{small_text_python} not found: small-text rows skipped (make its environment with "
                "`python3 -m venv /work/st-venv && /work/st-venv/bin/pip install small-text==1.4.1 pandas pyarrow`, "
                "or pass --small-text-python)"
            )
        return None
    import svp_hf

    if method["proxy"] not in svp_hf.PROXIES:
        return f"unknown proxy {method['proxy']!r} (registered: {', '.join(svp_hf.PROXIES.names())})"
    if method["strategy"] not in svp_hf.STRATEGIES:
        return f"unknown strategy {method['strategy']!r} (registered: {', '.join(svp_hf.STRATEGIES.names())})"
    return None


# -- data and schedule ----------------------------------------------------------------------------------------------
def pool_rows(num_rows: int, pool_size: int | None, seed: int = 0) -> list[int] | None:
    """Positions of a seeded random subset of the split (in split order), or None for all of it."""
    if not pool_size or pool_size >= num_rows:
        return None
    return sorted(int(i) for i in np.random.default_rng(seed).choice(num_rows, pool_size, replace=False))


def load_data(args):
    import datasets

    from svp_hf.data import load_pool

    datasets.disable_progress_bars()  # one bar per saved round would bury the results

    pool = load_pool(args.dataset, args.split)
    rows = pool_rows(pool.num_rows, args.pool_size)
    if rows is not None:
        pool = pool.select(rows).flatten_indices()
    evaluation = load_pool(args.dataset, args.eval_split)
    eval_rows = pool_rows(evaluation.num_rows, getattr(args, "eval_size", None), seed=1)
    if eval_rows is not None:
        evaluation = evaluation.select(eval_rows).flatten_indices()
    return pool, (rows, eval_rows), evaluation


def schedule(initial, budgets: list, pool_size: int) -> tuple[int, list[int]]:
    """The initial set and the budgets as row counts (svp-hf's rounding: fractions of the pool, half up)."""
    from svp_hf.data import check_budget, resolve_budget

    n0 = resolve_budget(check_budget(initial), pool_size)
    rows = [resolve_budget(check_budget(b), pool_size) for b in budgets]
    if any(b <= a for a, b in zip([n0, *rows], rows)):
        raise SystemExit(f"budgets must grow past the initial set: initial {n0} rows, budgets {rows} rows")
    return n0, rows


def initial_set(pool, seed: int, n0: int) -> np.ndarray:
    """The random initial set an svp-hf ActiveLearner with this seed draws in round 0, computed once per seed and
    given to small-text; every svp-hf run is checked to have drawn exactly these rows."""
    import svp_hf
    from svp_hf.active import round_seed

    config = svp_hf.SelectionConfig(proxy="tfidf", strategy="random", budget=n0, seed=round_seed(seed, 0))
    return np.asarray(svp_hf.select(pool, config).indices, dtype=np.int64)


@contextlib.contextmanager
def cold_feature_cache(folder: Path):
    """Every svp-hf cell starts without cached pool features (small-text vectorizes afresh in each run too): an
    empty ``$SVP_HF_CACHE`` and, where svp-hf keeps features in memory, that cache cleared, before and after."""
    try:
        from svp_hf.proxies.features import CACHE_ENV, clear_memory_cache
    except ImportError:  # an svp-hf without a feature cache
        CACHE_ENV, clear_memory_cache = "SVP_HF_CACHE", (lambda: None)
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    clear_memory_cache()
    try:
        yield
    finally:
        clear_memory_cache()
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before


@contextlib.contextmanager
def warm_feature_cache(folder: Path):
    """svp-hf's features kept in ``folder`` (and in memory) across cells: a pool is featurized once per run of the
    harness (or never again, when ``folder`` already holds it)."""
    before = os.environ.get("SVP_HF_CACHE")
    os.environ["SVP_HF_CACHE"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SVP_HF_CACHE", None)
        else:
            os.environ["SVP_HF_CACHE"] = before


# -- one cell each --------------------------------------------------------------------------------------------------
def run_svp_cell(
    method: dict, seed: int, pool, evaluation, n0: int, budgets: list[int], initial: np.ndarray, feature_cache=None
) -> dict:
    import svp_hf

    config = svp_hf.ActiveLearningConfig(
        proxy=method["proxy"],
        strategy=method["strategy"],
        proxy_kwargs=method["proxy_kwargs"],
        initial=n0,
        budgets=budgets,
        batch_size=None,  # one query per budget step: the paper's schedule
        seed=seed,
    )
    notes = []
    t_start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="svp_vs_st_") as tmp,
        warm_feature_cache(Path(feature_cache)) if feature_cache else cold_feature_cache(Path(tmp) / "cache"),
    ):
        learner = svp_hf.ActiveLearner(pool, Path(tmp) / "al", config, eval_dataset=evaluation)
        state = learner.run(max_rounds=1)  # round 0: the random initial set
        if not np.array_equal(state.indices, initial):
            raise RuntimeError(
                f"{method['name']} seed {seed}: the learner drew another initial set than the shared one "
                "(svp-hf changed how round 0 is drawn; update initial_set())"
            )
        state = learner.run()
        records = state.records
        if len(state.indices) != budgets[-1]:
            raise RuntimeError(f"{method['name']}: ended with {len(state.indices)} labeled rows, not {budgets[-1]}")
        accuracy = {}
        for size in [n0, *budgets[:-1]]:
            (record,) = [r for r in records if r["labeled_before"] == size]
            accuracy[str(size)] = record["proxy_eval_accuracy"]
        final = records[-1].get("proxy_eval_accuracy_after")
        final_proxy = records[-1].get("final_proxy") or {}  # the form the lead's svp-hf records it in
        if final is None and final_proxy.get("labeled") == budgets[-1]:
            final = final_proxy.get("proxy_eval_accuracy")
        if final is None:
            # this svp-hf's records have no proxy_eval_accuracy_after (the accuracy of the proxy fitted on the final
            # labeled set): fit and evaluate that proxy here; not part of selection time, as in svp-hf
            final = learner.evaluate(learner.fit_proxy(state))
            notes.append("final accuracy: proxy fitted by the harness (learner.fit_proxy + learner.evaluate)")
        accuracy[str(budgets[-1])] = final
    wall = time.perf_counter() - t_start
    timing_totals: dict[str, float] = {}
    for r in records:
        for key, value in r["timings_s"].items():
            timing_totals[key] = timing_totals.get(key, 0.0) + float(value)
    one_time = {k: v for k, v in timing_totals.items() if any(part in k for part in ONE_TIME_TIMINGS)}
    diagnostic = {k: v for k, v in timing_totals.items() if k in DIAGNOSTIC_TIMINGS}
    selection = {k: v for k, v in timing_totals.items() if k not in one_time and k not in diagnostic}
    for r in records:  # an encoding cost reported in the record itself rather than in timings_s, if any
        for key, value in r.items():
            if "encod" in key and isinstance(value, (int, float)):
                one_time[key] = one_time.get(key, 0.0) + float(value)
    return {
        "method": method["name"],
        "kind": "svp-hf",
        "seed": seed,
        "accuracy": accuracy,
        "selection_s": round(sum(selection.values()), 6),  # proxy fit + scoring + strategy, every round
        "timings_s": {k: round(v, 6) for k, v in timing_totals.items()},
        "one_time_s": round(sum(one_time.values()), 6) if one_time else None,
        "one_time_detail_s": {k: round(v, 6) for k, v in one_time.items()} or None,
        "diagnostic_s": round(sum(diagnostic.values()), 6) if diagnostic else None,
        "wall_s": round(wall, 3),
        "rounds": [
            {k: r.get(k) for k in ("round", "labeled_before", "queried", "timings_s", "proxy_eval_accuracy")}
            for r in records
        ],
        "notes": notes,
    }


def run_small_text_cell(method: dict, seed: int, args, data: dict, n0: int, budgets: list[int], initial) -> dict:
    spec = {
        "dataset": str(Path(args.dataset).resolve()),
        "split": args.split,
        "rows": data["rows"],
        "eval_split": args.eval_split,
        "eval_rows": data.get("eval_rows"),
        "text_column": args.text_column,
        "label_column": args.label_column,
        "num_classes": data["num_classes"],
        "initial_indices": [int(i) for i in initial],
        "budgets": budgets,
        "seed": seed,
        "strategy": method["strategy"],
    }
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="svp_vs_st_") as tmp:
        spec_file, out_file = Path(tmp) / "in.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec))
        done = subprocess.run(
            [args.small_text_python, str(RUNNER), str(spec_file), str(out_file)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"small_text_runner.py failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        out = json.loads(out_file.read_text())
    wall = time.perf_counter() - t_start
    for what in ("pool", "eval"):
        if out[f"{what}_fingerprint"] != data[f"{what}_fingerprint"]:
            raise RuntimeError(f"small-text read other {what} rows than svp-hf (fingerprints differ)")
    sizes = [s["labeled"] for s in out["steps"]]
    if sizes != [n0, *budgets] or out["labeled_indices"][:n0] != spec["initial_indices"]:
        raise RuntimeError(f"small-text ran another schedule: {sizes}")
    return {
        "method": method["name"],
        "kind": "small-text",
        "seed": seed,
        "accuracy": {str(s["labeled"]): s["accuracy"] for s in out["steps"]},
        # what small-text's own SklearnClassifier.predict scores: wrong while a class has no labeled row
        "accuracy_small_text_predict": {str(s["labeled"]): s["accuracy_small_text_predict"] for s in out["steps"]},
        "selection_s": out["selection_s"],
        "fit_query_s": out["fit_query_s"],
        "one_time_s": out["vectorize_s"],
        "one_time_detail_s": {"tfidf_vectorize": out["vectorize_s"]},
        "wall_s": round(wall, 3),
        "steps": out["steps"],
        "num_features": out["num_features"],
        "small_text_version": out["small_text_version"],
        "notes": [],
    }


def environment() -> dict:
    """What produced a cell: svp-hf's version, the git commit, and a hash of svp_hf's sources (the tree may hold
    uncommitted changes)."""
    import svp_hf

    root = Path(svp_hf.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\x00" + f.read_bytes())
    try:
        repo = root.parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "svp_hf"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit, dirty = None, None
    return {
        "svp_hf_version": svp_hf.__version__,
        "git_commit": commit or None,
        "svp_hf_uncommitted_changes": bool(dirty) if dirty is not None else None,
        "svp_hf_source_sha256": h.hexdigest()[:16],
        "python": sys.version.split()[0],
    }


# -- results file ---------------------------------------------------------------------------------------------------
def cell_key(method: str, seed: int) -> str:
    return f"{method}|seed={seed}"


def load_results(path: Path, settings: dict) -> dict:
    if not path.exists():
        return {"benchmark": "vs_small_text", "settings": settings, "initial_sets": {}, "cells": {}}
    results = json.loads(path.read_text())
    if results.get("settings") != settings:
        old = results.get("settings", {})
        differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        raise SystemExit(f"{path} holds results for other settings ({', '.join(differ)}); choose another --output")
    return results


def save(path: Path, results: dict) -> None:
    from svp_hf.io import write_json_atomic  # a temporary file, then os.replace

    write_json_atomic(path, results, indent=1)


def default_output(args) -> Path:
    name = Path(args.dataset).resolve().name
    return RESULTS / f"vs_small_text_{name}{'_quick' if args.quick else ''}.json"


# -- report ---------------------------------------------------------------------------------------------------------
def summarize(results: dict) -> tuple[list[str], list[str], dict]:
    """Budgets (row counts, as strings), methods in first-seen order, and {(method, budget): (mean, std, n)}."""
    settings = results["settings"]
    sizes = [str(settings["initial_rows"]), *(str(b) for b in settings["budget_rows"])]
    methods: list[str] = []
    for cell in results["cells"].values():
        if cell["method"] not in methods:
            methods.append(cell["method"])
    table = {}
    for method in methods:
        cells = [c for c in results["cells"].values() if c["method"] == method]
        for size in sizes:
            values = np.array([c["accuracy"][size] for c in cells if c["accuracy"].get(size) is not None])
            if len(values):
                table[(method, size)] = (float(values.mean()), float(values.std()), len(values))
        for key in ("selection_s", "one_time_s", "diagnostic_s", "wall_s"):
            values = [c[key] for c in cells if c.get(key) is not None]
            table[(method, key)] = float(np.mean(values)) if values else None
        table[(method, "seeds")] = sorted(c["seed"] for c in cells)
    return sizes, methods, table


def report_markdown(results: dict) -> str:
    settings = results["settings"]
    sizes, methods, table = summarize(results)
    pool = settings["pool_rows"]
    st = [m for m in methods if m.startswith("small-text:")]
    best = {}
    for size in sizes:
        scored = [(table[(m, size)][0], m) for m in st if (m, size) in table]
        if scored:
            best[size] = max(scored)
    timing_columns = ["selection_s", "one_time_s", "diagnostic_s", "wall_s"]
    if all(table[(m, "diagnostic_s")] is None for m in methods):
        timing_columns.remove("diagnostic_s")
    names = {"selection_s": "selection s", "one_time_s": "one-time s", "diagnostic_s": "self-check s"}
    names["wall_s"] = "wall s"
    head = ["method", *(f"{100 * int(s) / pool:.0f}% ({s})" for s in sizes), *(names[k] for k in timing_columns)]
    lines = [
        f"{Path(settings['dataset']).name}, pool {settings['split']} ({pool} rows), accuracy % on "
        f"{settings['eval_split']} ({settings['eval_rows']} rows) of the model trained on that many labeled rows, "
        "mean ± std over seeds; one query per budget step from a shared random start.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]

    def seconds(v):
        return "–" if v is None else f"{v:.2f}"

    for method in methods:
        row = [f"{'' if method.startswith('small-text:') else 'svp-hf '}{method}"]
        for size in sizes:
            if (method, size) not in table:
                row.append("–")
                continue
            mean, std, _ = table[(method, size)]
            text = f"{100 * mean:.1f} ± {100 * std:.1f}"
            if method in st and size in best and mean == best[size][0]:  # ties: every best row in bold
                text = f"**{text}**"
            elif method not in st and size in best:
                diff = round(100 * (mean - best[size][0]), 1)
                text += f" ({diff:+.1f})" if diff else " (±0.0)"
            row.append(text)
        row += [seconds(table[(method, k)]) for k in timing_columns]
        lines.append("| " + " | ".join(row) + " |")
    seeds = sorted({s for m in methods for s in table[(m, "seeds")]})
    lines += [
        "",
        f"Seeds: {', '.join(map(str, seeds))}. **Bold**: the best small-text row at that budget; (±x.x) after an "
        "svp-hf cell: its difference from that row, in points. Selection s: svp-hf, every round's proxy fit + "
        "scoring + strategy; small-text, the classifier fits that preceded a query + the queries. One-time s: "
        "small-text's TF-IDF vectorization; svp-hf, pool features / encodings computed, or read from the disk "
        "cache (--feature-cache), once per run ('-': already in memory from an earlier cell of the same run; cells "
        "measured before session 6 counted a disk read as selection). Self-check s: svp-hf's proxy_check, a "
        "diagnostic that selects nothing. Wall s: the whole cell, with evaluation and I/O (small-text: its "
        "subprocess, with imports).",
    ]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    args = make_parser().parse_args(argv)
    if args.report_only:
        if not args.output:
            raise SystemExit("--report-only needs --output")
        results = json.loads(Path(args.output).read_text())
        print(report_markdown(results))
        return results
    if not args.dataset:
        raise SystemExit("--dataset is required")
    if args.quick:
        args.pool_size = args.pool_size or QUICK["pool_size"]
    seeds = [int(s) for s in (args.seeds or (QUICK["seeds"] if args.quick else "0,1,2")).split(",") if s.strip()]
    budget_spec = args.budgets or (QUICK["budgets"] if args.quick else "0.1,0.2,0.3,0.4,0.5")
    budget_values = [b.strip() for b in budget_spec.split(",") if b.strip()]
    try:
        methods = [parse_method(m) for m in split_methods(args.methods)]
    except ValueError as err:
        raise SystemExit(str(err)) from None

    pool, (rows, eval_rows), evaluation = load_data(args)
    n0, budgets = schedule(args.initial, budget_values, pool.num_rows)
    data = {
        "rows": rows,
        "eval_rows": eval_rows,
        "num_classes": pool.features[args.label_column].num_classes,
        "pool_fingerprint": fingerprint(pool[args.text_column], pool[args.label_column]),
        "eval_fingerprint": fingerprint(evaluation[args.text_column], evaluation[args.label_column]),
    }
    settings = {
        "dataset": str(Path(args.dataset).resolve()),
        "split": args.split,
        "pool_size_arg": args.pool_size,
        "pool_rows": pool.num_rows,
        "pool_fingerprint": data["pool_fingerprint"],
        "eval_split": args.eval_split,
        "eval_rows": evaluation.num_rows,
        "eval_fingerprint": data["eval_fingerprint"],
        "initial_rows": n0,
        "budget_rows": budgets,
    }
    output = Path(args.output) if args.output else default_output(args)
    results = load_results(output, settings)
    print(f"pool {pool.num_rows} rows, eval {evaluation.num_rows} rows; initial {n0}, budgets {budgets}; -> {output}")

    env = environment()
    runnable = []
    for method in methods:
        why = unavailable(method, args.small_text_python)
        if why:
            print(f"skipping {method['name']}: {why}", flush=True)
        else:
            runnable.append(method)
    for seed in seeds:
        shared = results["initial_sets"].get(str(seed))
        initial = initial_set(pool, seed, n0)
        if shared is not None and shared != initial.tolist():
            raise SystemExit(f"{output}: the stored initial set of seed {seed} is not svp-hf's draw any more")
        results["initial_sets"][str(seed)] = initial.tolist()
        for method in runnable:
            key = cell_key(method["name"], seed)
            if key in results["cells"] and not args.redo:
                print(f"{key}: done before, reused", flush=True)
                continue
            print(f"{key}: running", flush=True)
            if method["kind"] == "small-text":
                cell = run_small_text_cell(method, seed, args, data, n0, budgets, initial)
            else:
                try:
                    cell = run_svp_cell(method, seed, pool, evaluation, n0, budgets, initial, args.feature_cache)
                except ImportError as err:  # svp_hf.MissingDependencyError: an optional extra is not installed
                    print(f"skipping {key}: {err}", flush=True)
                    continue
            cell["environment"] = env
            if key in results["cells"]:  # --redo: the earlier measurement stays on record
                results.setdefault("replaced", {}).setdefault(key, []).append(results["cells"][key])
            results["cells"][key] = cell
            save(output, results)  # each cell lands atomically as it finishes
            accuracies = " ".join(f"{k}:{100 * v:.1f}" for k, v in cell["accuracy"].items())
            print(f"{key}: accuracy {accuracies}; selection {cell['selection_s']:.2f}s, wall {cell['wall_s']:.1f}s")
    save(output, results)
    if args.report:
        print(report_markdown(results))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
