"""Run by tests/test_distributed.py under `python -m torch.distributed.run --nproc_per_node 2`: greedy k-centers
across processes on synthetic cases (uneven shards, labeled centres, exact ties, fewer rows than processes) and one
real selection with labeled rows; rank 0 saves every result to the .npz named on the command line."""

import sys

import numpy as np

from svp_hf.distributed import current, shutdown
from svp_hf.strategies import greedy_k_centers


def cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(301, 6)).astype(np.float32)
    yield "labeled", x, 40, {"centers": rng.choice(301, 25, replace=False), "exclude": np.arange(5), "seed": 1}
    yield "coreset", x, 30, {"seed": 2, "initial_random": 3}
    dup = np.repeat(rng.normal(size=(7, 3)).astype(np.float32), 9, axis=0)  # 63 rows, many exact ties
    yield "ties", dup, 20, {"seed": 3, "centers": np.array([0, 40])}
    yield "tiny", x[:3], 2, {"seed": 4}
    yield "chunked", x, 35, {"centers": np.arange(0, 301, 7), "seed": 5, "chunk_elements": 500}


def main(out: str) -> None:
    dist = current()
    assert dist is not None and dist.world_size == 2
    results = {}
    for name, x, n, kwargs in cases():
        start, stop = dist.shard(x.shape[0])
        rows, scores = greedy_k_centers(x[start:stop], n, dist=dist, shard=(start, stop), num_rows=x.shape[0],
                                        **kwargs)  # fmt: skip
        results[f"{name}_rows"], results[f"{name}_scores"] = rows, scores
    if len(sys.argv) > 2:  # a real selection: fastText embeddings of AG News, the labeled rows as centres
        import svp_hf

        pool = svp_hf.load_pool(sys.argv[2], "train[:2001]")
        result = svp_hf.select(pool, proxy="fasttext", strategy="kcenters", budget=60, seed=0,
                               labeled_indices=np.arange(0, 2001, 20), proxy_kwargs={"epochs": 5})  # fmt: skip
        results["select_rows"], results["select_scores"] = result.indices, result.scores
    if dist.is_main:
        np.savez(out, **results)
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
