"""What exact, position-independent distances cost k-centers: the BLAS expansion |x|² - 2x·c + |c|² (the previous
implementation; its rounding depends on where a row sits in the matrix, so shards of several processes could differ
from one process by an ulp) against direct differences (torch.cdist without the matrix-product shortcut, what
svp-hf uses now), in one process, alternating, on the same random float32 embeddings.

    python -m benchmarks.kcenters_distances                     # N=200k, D=64: 1,000 initial centres, 200 picks
"""

from __future__ import annotations

import argparse
import json
import time

from svp_hf.io import write_json_atomic


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--centers", type=int, default=1_000)
    p.add_argument("--picks", type=int, default=200)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=None)
    return p


def main(args: argparse.Namespace) -> dict:
    import torch

    from svp_hf.strategies.kcenters import CHUNK_ELEMENTS, DIRECT

    torch.manual_seed(0)
    x = torch.randn(args.rows, args.dim)
    centers = torch.randn(args.centers, args.dim)
    sq = (x * x).sum(1)
    step = max(1, CHUNK_ELEMENTS // args.rows)

    def init_expansion():
        out = torch.full((args.rows,), float("inf"))
        for lo in range(0, args.centers, step):
            c = centers[lo : lo + step]
            d = (x @ c.T).mul_(-2.0).add_(sq[:, None]).add_((c * c).sum(1)[None, :])
            torch.minimum(out, d.min(1).values.clamp_(min=0.0), out=out)

    def init_direct():
        out = torch.full((args.rows,), float("inf"))
        for lo in range(0, args.centers, step):
            torch.minimum(out, torch.cdist(x, centers[lo : lo + step], compute_mode=DIRECT).min(1).values, out=out)

    def picks_expansion():
        for i in range(args.picks):
            c = centers[i % args.centers]
            (x @ c).mul_(-2.0).add_(sq).add_((c * c).sum()).clamp_(min=0.0)

    def picks_direct():
        for i in range(args.picks):
            torch.cdist(x, centers[i % args.centers][None], compute_mode=DIRECT)

    timings: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for f in (init_expansion, init_direct, picks_expansion, picks_direct):
            t0 = time.perf_counter()
            f()
            timings.setdefault(f.__name__, []).append(round(time.perf_counter() - t0, 3))
    best = {k: min(v) for k, v in timings.items()}
    results = {
        "rows": args.rows, "dim": args.dim, "centers": args.centers, "picks": args.picks,
        "threads": torch.get_num_threads(), "seconds": timings, "best_seconds": best,
        "init_ratio_direct_over_expansion": round(best["init_direct"] / best["init_expansion"], 2),
        "pick_ratio_direct_over_expansion": round(best["picks_direct"] / best["picks_expansion"], 2),
    }  # fmt: skip
    print(json.dumps(results, indent=2))
    if args.out:
        write_json_atomic(args.out, results)
    return results


if __name__ == "__main__":
    main(make_parser().parse_args())
