"""Greedy k-centers: svp-hf's O(N·D) implementation against a dense-matrix one, time and peak memory.

Both run the same farthest-first algorithm from the same labeled centres on the same random float32 embeddings,
each in a fresh process (so peak RSS is its own). The dense version keeps the (labeled + budget) x N distance
matrix the reference implementation built; svp-hf keeps one running minimum-distance vector.

    python -m benchmarks.kcenters                              # N=200k, D=64, 2k labeled centres, pick 2k
    python -m benchmarks.kcenters --rows 20000 --picks 200     # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from svp_hf.io import write_json_atomic

_CHILD = r"""
import json, resource, sys, time
import numpy as np
mode, rows, dim, labeled, picks = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(0)
x = rng.normal(size=(rows, dim)).astype(np.float32)
centers = rng.choice(rows, size=labeled, replace=False)
import torch  # imported in both modes so that library memory is not counted as the algorithm's
torch.set_num_threads(2)
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if mode == "svp_hf":
    from svp_hf.strategies import greedy_k_centers
    t0 = time.perf_counter()
    chosen, _ = greedy_k_centers(x, picks, centers=centers, seed=0, device="cpu")
else:
    # The dense way: a (labeled + picks) x N matrix of distances, one row per centre.
    sq = (x * x).sum(1)
    dist = np.empty((labeled + picks, rows), dtype=np.float32)
    for i, c in enumerate(centers):
        dist[i] = sq + sq[c] - 2.0 * (x @ x[c])
    np.maximum(dist[:labeled], 0, out=dist[:labeled])
    min_d = dist[:labeled].min(axis=0)
    min_d[centers] = -1.0
    chosen = []
    for k in range(picks):
        j = int(np.argmax(min_d))
        chosen.append(j)
        row = labeled + k
        dist[row] = np.maximum(sq + sq[j] - 2.0 * (x @ x[j]), 0)
        np.minimum(min_d, dist[row], out=min_d)
        min_d[j] = -1.0
    chosen = np.array(chosen)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mode": mode, "seconds": round(seconds, 2), "peak_rss_mb": round(peak / 1024, 1),
                  "rss_above_inputs_mb": round((peak - base_rss) / 1024, 1), "picks": chosen[:50].tolist()}))
"""


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--labeled", type=int, default=2_000)
    p.add_argument("--picks", type=int, default=2_000)
    p.add_argument("--out", default=None)
    return p


def main(args: argparse.Namespace) -> dict:
    results = {"rows": args.rows, "dim": args.dim, "labeled": args.labeled, "picks": args.picks}
    for mode in ("svp_hf", "dense"):
        cmd = [sys.executable, "-c", _CHILD, mode, str(args.rows), str(args.dim), str(args.labeled), str(args.picks)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            results[mode] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        else:
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps({mode: results[mode]}), flush=True)
    ours, dense = results["svp_hf"], results["dense"]
    if "error" not in ours and "error" not in dense:
        results["same_picks"] = ours.pop("picks") == dense.pop("picks")
        results["time_ratio_dense_over_svp_hf"] = round(dense["seconds"] / ours["seconds"], 2)
        results["memory_ratio_dense_over_svp_hf"] = round(
            dense["rss_above_inputs_mb"] / ours["rss_above_inputs_mb"], 2
        )
        print(
            f"k-centers N={args.rows} D={args.dim}: svp-hf {ours['seconds']}s / {ours['rss_above_inputs_mb']} MB, "
            f"dense {dense['seconds']}s / {dense['rss_above_inputs_mb']} MB, same picks: {results['same_picks']}"
        )
    if args.out:
        write_json_atomic(args.out, results)
    return results


if __name__ == "__main__":
    main(make_parser().parse_args())
