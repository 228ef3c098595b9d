"""fastText proxy scoring: throughput against the bare fastText library, and peak memory on a 1M-row pool.

(a) Throughput: svp-hf's ``FastTextProxy.predict_proba(dataset)`` (Arrow batches -> preprocessing -> fastText ->
    probabilities in label-id order) against calling ``model.predict(texts, k=-1)`` directly on the same model
    with the texts already preprocessed and in memory as a Python list (the library's own speed, the strictest
    baseline). Best of ``--repeats`` interleaved runs each. Goal: ratio >= 0.8.
(b) Peak RSS: a fresh process loads a ``--big-rows`` pool stored as parquet on disk, fits the proxy on the AG News
    train split and scores the whole pool through svp-hf; a second fresh process does the same the naive way
    (the text column as a Python list, then ``model.predict``). Goal: svp-hf < 2 GB.

    python -m benchmarks.scoring --data ../shared/data/ag_news                   # both, as in BENCHMARKS.md
    python -m benchmarks.scoring --data ../shared/data/ag_news --rows 20000 --big-rows 50000   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from svp_hf.io import write_json_atomic


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ag_news")
    p.add_argument("--rows", type=int, default=110_000, help="pool size for the throughput comparison")
    p.add_argument("--big-rows", type=int, default=1_000_000, help="pool size for the memory measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p


def tiled_parquet(data: str, rows: int, path: Path) -> Path:
    """AG News train + test texts, repeated until the pool has ``rows`` rows, written as one parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(Path(data) / f"{s}.parquet", columns=["text", "label"]) for s in ("train", "test")]
    base = pa.concat_tables(tables)
    reps = math.ceil(rows / base.num_rows)
    table = pa.concat_tables([base] * reps).slice(0, rows)
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path / "train.parquet", row_group_size=50_000)
    return path


def throughput(args) -> dict:
    import numpy as np

    from svp_hf.data import load_pool
    from svp_hf.proxies.fasttext import FastTextProxy, preprocess

    with tempfile.TemporaryDirectory() as tmp:
        pool = load_pool(tiled_parquet(args.data, args.rows, Path(tmp) / "pool"), "train")
        proxy = FastTextProxy(seed=0).fit(load_pool(args.data, "train"))
        column = pool.data.column("text").combine_chunks()
        texts = preprocess(column).to_pylist()  # the direct baseline gets ready-made input
        direct, ours = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            proxy.model.predict(texts, k=-1)
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            probs = proxy.predict_proba(pool)
            ours.append(time.perf_counter() - t0)
        assert probs.shape == (pool.num_rows, 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
    n = pool.num_rows
    return {
        "rows": n,
        "direct_rows_per_s": round(n / min(direct), 1),
        "svp_hf_rows_per_s": round(n / min(ours), 1),
        "ratio": round(min(direct) / min(ours), 3),
        "direct_s": [round(t, 3) for t in direct],
        "svp_hf_s": [round(t, 3) for t in ours],
    }


_CHILD = r"""
import json, resource, sys, time
import numpy as np
from svp_hf.data import load_pool
from svp_hf.proxies.fasttext import FastTextProxy, preprocess
mode, pool_dir, data = sys.argv[1:4]
t0 = time.perf_counter()
pool = load_pool(pool_dir, "train")
proxy = FastTextProxy(seed=0).fit(load_pool(data, "train"))
if mode == "svp_hf":
    probs = proxy.predict_proba(pool)
else:  # the naive way: the whole text column as Python strings
    import pyarrow as pa
    texts = pool[:]["text"]
    texts = preprocess(pa.array(texts)).to_pylist()
    labels, probs = proxy.model.predict(texts, k=-1)
    probs = np.asarray(probs)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mode": mode, "rows": pool.num_rows, "peak_rss_mb": round(rss_mb, 1),
                  "seconds": round(time.perf_counter() - t0, 2)}))
"""


def memory(args) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        pool_dir = tiled_parquet(args.data, args.big_rows, Path(tmp) / "big")
        # convert to the datasets Arrow cache once, outside the measured processes
        subprocess.run(
            [sys.executable, "-c", f"from svp_hf.data import load_pool; load_pool({str(pool_dir)!r})"], check=True
        )
        for mode in ("svp_hf", "naive"):
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, mode, str(pool_dir), args.data], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def main(args: argparse.Namespace) -> dict:
    results = {"machine": f"{os.cpu_count()} CPUs", "throughput": throughput(args)}
    print(json.dumps(results["throughput"]), flush=True)
    if not args.skip_memory:
        results["memory"] = memory(args)
        for row in results["memory"]:
            print(json.dumps(row), flush=True)
    t = results["throughput"]
    print(f"fastText scoring throughput ratio (svp-hf / direct): {t['ratio']:.2f} on {t['rows']} rows")
    if args.out:
        write_json_atomic(args.out, results, indent=2)
    return results


if __name__ == "__main__":
    main(make_parser().parse_args())
