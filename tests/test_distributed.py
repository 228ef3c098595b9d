"""Several real CPU processes (gloo, launched by torch.distributed.run): sharded scoring and distributed k-centers
give exactly the single-process result, only the main process writes, and a bad launch is refused."""

import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from svp_hf.distributed import shard_bounds

SCRIPTS = Path(__file__).parent / "scripts"


def torchrun(*args, port: int, env=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), *args]
    return subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env)


def svp(*args, env=None):
    return subprocess.run([sys.executable, "-m", "svp_hf", *map(str, args)], capture_output=True, text=True, env=env)


def test_shards_are_contiguous_uneven_and_cover_the_pool_once():
    for num_rows in (0, 1, 2, 3, 7, 3001):
        for world in (1, 2, 3, 8):
            bounds = [shard_bounds(num_rows, world, r) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == num_rows
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize(
    "proxy,strategy,rows,port",
    [
        ("fasttext", "entropy", 3001, 29611),
        ("embedding", "margin", 601, 29620),
        pytest.param("tfidf", "kcenters", 1001, 29612, marks=pytest.mark.slow),
        pytest.param("tfidf", "forgetting_events", 3001, 29613, marks=pytest.mark.slow),
        pytest.param("fasttext", "kcenters", 15183, 29616, marks=pytest.mark.slow),
        pytest.param("transformer", "entropy", 2001, 29618, marks=pytest.mark.slow),
        pytest.param("transformer", "kcenters", 2001, 29619, marks=pytest.mark.slow),
    ],
)
def test_select_under_torchrun_matches_one_process(ag_news_path, tmp_path, proxy, strategy, rows, port):
    args = ["select", "--dataset", ag_news_path, "--split", f"train[:{rows}]", "--proxy", proxy, "--strategy",
            strategy, "--budget", "0.1", "--seed", "0", "--quiet"]  # fmt: skip
    if proxy in ("fasttext", "transformer", "embedding"):
        args += ["--proxy-kwargs", {"fasttext": '{"epochs": 5}', "transformer": '{"epochs": 2}',
                                    "embedding": '{"max_length": 32}'}[proxy]]  # fmt: skip
    # torchrun runs each process with OMP_NUM_THREADS=1; torch's training and inference (the transformer proxy, the
    # embedding proxy's encoder) depend on the thread count, so the single process gets the same one
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if proxy in ("transformer", "embedding") else None
    one = svp(*args, "--output-dir", tmp_path / "one", env=env)
    assert one.returncode == 0, one.stderr
    # the embedding proxy's pool features: a cold cache, so the two processes each encode a share of the pool
    two_env = {**os.environ, "SVP_HF_CACHE": str(tmp_path / "cache")} if proxy == "embedding" else None
    two = torchrun("-m", "svp_hf", *args, "--output-dir", tmp_path / "two", port=port, env=two_env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count(f"Selected {round(rows / 10)} of {rows} rows") == 1  # only the main process reports
    a, b = datasets.load_from_disk(tmp_path / "one"), datasets.load_from_disk(tmp_path / "two")
    assert a[:]["svp_pool_index"] == b[:]["svp_pool_index"]
    np.testing.assert_array_equal(np.array(a[:]["svp_score"]), np.array(b[:]["svp_score"]))
    np.testing.assert_array_equal(np.load(tmp_path / "one/svp_pool_scores.npy"),
                                  np.load(tmp_path / "two/svp_pool_scores.npy"))  # fmt: skip
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "cache")
    assert leftovers == ["one", "two"]  # no leftover temporary folders
    import json

    assert json.loads((tmp_path / "two/selection_config.json").read_text())["num_processes"] == 2


def test_a_process_late_to_the_save_does_not_refuse_the_main_one_s_folder(ag_news_path, tmp_path):
    done = torchrun(SCRIPTS / "dist_save_late.py", tmp_path / "out", ag_news_path, port=29622)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(datasets.load_from_disk(tmp_path / "out")) == 20


def test_distributed_k_centers_matches_one_process(ag_news_path, tmp_path):
    out = tmp_path / "two.npz"
    done = torchrun(SCRIPTS / "dist_kcenters.py", out, ag_news_path, port=29614)
    assert done.returncode == 0, done.stderr[-3000:]
    sys.path.insert(0, str(SCRIPTS))
    try:
        from dist_kcenters import cases
    finally:
        sys.path.pop(0)
    from svp_hf.strategies import greedy_k_centers

    two = np.load(out)
    for name, x, n, kwargs in cases():
        rows, scores = greedy_k_centers(x, n, **kwargs)
        np.testing.assert_array_equal(two[f"{name}_rows"], rows, err_msg=name)
        np.testing.assert_array_equal(two[f"{name}_scores"], scores, err_msg=name)
    import svp_hf

    pool = svp_hf.load_pool(ag_news_path, "train[:2001]")
    result = svp_hf.select(pool, proxy="fasttext", strategy="kcenters", budget=60, seed=0,
                           labeled_indices=np.arange(0, 2001, 20), proxy_kwargs={"epochs": 5})  # fmt: skip
    np.testing.assert_array_equal(two["select_rows"], result.indices)
    np.testing.assert_array_equal(two["select_scores"], result.scores)


def test_several_processes_without_a_process_group_are_refused(ag_news_path, tmp_path):
    args = ["select", "--dataset", ag_news_path, "--split", "train[:200]", "--proxy", "tfidf", "--strategy",
            "entropy", "--budget", "10", "--output-dir", tmp_path / "out"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")}
    done = svp(*args, env={**env, "WORLD_SIZE": "2"})
    assert done.returncode == 1
    assert "WORLD_SIZE=2" in done.stderr and "torchrun --nproc_per_node 2" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    lonely = {**env, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
              "MASTER_PORT": "29615", "SVP_HF_DIST_INIT_TIMEOUT": "3"}  # fmt: skip
    done = svp(*args, env=lonely)  # rank 1 never comes
    assert done.returncode == 1 and "could not form a process group" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_active_learning_under_torchrun_matches_one_process(ag_news_path, tmp_path):
    args = ["active-learn", "--dataset", ag_news_path, "--split", "train[:1501]", "--proxy", "tfidf", "--strategy",
            "margin", "--initial", "50", "--budgets", "100,150", "--seed", "0", "--quiet"]  # fmt: skip
    one = svp(*args, "--output-dir", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = torchrun("-m", "svp_hf", *args, "--output-dir", tmp_path / "two", port=29617)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("Active learning finished") == 1
    a, b = datasets.load_from_disk(tmp_path / "one/labeled"), datasets.load_from_disk(tmp_path / "two/labeled")
    assert a[:]["svp_pool_index"] == b[:]["svp_pool_index"] and a[:]["svp_round"] == b[:]["svp_round"]
    for r in range(1, 3):
        name = f"scores/round_{r:04d}.npy"
        np.testing.assert_array_equal(np.load(tmp_path / "one" / name), np.load(tmp_path / "two" / name))
