#!/usr/bin/env bash
# GPU run-book (issue 15): on a machine with a CUDA device, check that GPU and CPU select the same rows, train the
# MiniLM target in bf16, and print throughput. Under 8 minutes end to end on one GPU (pool 4,000 rows, 300 steps).
#
#   bash benchmarks/gpu_check.sh                      # the check; exits 1 on any disagreement or failed step
#   bash benchmarks/gpu_check.sh --device cpu         # dry run of the same steps on the CPU only (tiny sizes): what
#                                                     # the test suite runs; it proves the script, not the GPU
#   PYTHON=/path/to/python bash benchmarks/gpu_check.sh --pool 8000 --train-steps 500 --out gpu_check_out
#
# Steps (each prints one line; a JSON summary goes to OUT/gpu_check.json):
#   1. Two scoring passes over the same AG News pool and the same labeled rows, one with the GPU hidden
#      (CUDA_VISIBLE_DEVICES="", everything on the CPU) and one with it (the library picks the GPU itself), each with
#      its own empty feature cache: the frozen all-MiniLM-L6-v2 encoder's embeddings, the `embedding` and `hybrid`
#      proxies (fitted on the labeled rows, scoring the pool, margin picks; hybrid's embedding_weight fixed at 1 so
#      that a near-tie in its cross-validated choice cannot make the passes differ), and k-centers through `select`.
#   2. Agreement. GPU kernels sum in another order than CPU ones, so equal picks are not guaranteed; a check passes
#      when the picks are identical, or when every score is within its tolerance and the picks overlap at least 90%:
#        encoder embeddings        max |GPU - CPU| <= 1e-3 (unit-length vectors)
#        embedding / hybrid proxy  margin scores within 5e-3, picks overlap >= 90%
#        k-centers, same input     greedy_k_centers on the CPU pass's embeddings on both devices: picks identical,
#                                  or each pick's distance within 1e-4 (relative)
#      Reported, not failed: k-centers through `select` (its inputs differ by the encoder's rounding, and one early
#      different pick changes every later one) and cluster_margin's k-means on both devices.
#   3. The MiniLM target fine-tuned in bf16 for --train-steps steps (batch 32, 128 tokens) on 2,000 rows, evaluated on
#      1,000: training and evaluation rows/s; fails on a non-finite loss or accuracy at or below 50% (4 classes).
# Exit status: 0 all checks passed, 1 a check failed, 2 refused (no CUDA device without --device cpu, bad usage).
set -euo pipefail

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }

device=cuda
pool=""
train_steps=""
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="${2:-}"; shift 2 ;;
        --pool) pool="${2:-}"; shift 2 ;;
        --train-steps) train_steps="${2:-}"; shift 2 ;;
        --out) out="${2:-}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ "$device" != cuda && "$device" != cpu ]]; then
    echo "gpu_check.sh: --device must be cuda or cpu, got '$device'" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
data="${SVP_SHARED_DATA:-$repo/../shared/data}/ag_news"
if [[ "$device" == cuda ]]; then
    if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "gpu_check.sh: refused: no CUDA device (torch.cuda.is_available() is False with $PYTHON). This script" \
            "compares the GPU with the CPU: run it on a machine with a GPU, or pass --device cpu for a dry run of" \
            "the CPU path." >&2
        exit 2
    fi
    pool="${pool:-4000}"
    train_steps="${train_steps:-300}"
else
    pool="${pool:-100}"
    train_steps="${train_steps:-2}"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
out="${out:-$work/out}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GPU_CHECK_DATA="$data" GPU_CHECK_POOL="$pool" \
    GPU_CHECK_TRAIN_STEPS="$train_steps" GPU_CHECK_OUT="$out" GPU_CHECK_DEVICE="$device"

cat >"$work/gpu_check.py" <<'PY'
"""The steps of benchmarks/gpu_check.sh: ``score NAME`` (one scoring pass), ``compare`` (agreement, k-centers and
cluster_margin on both devices), ``train`` (the bf16 MiniLM target)."""
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

logging.disable(logging.WARNING)
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
OUT = Path(os.environ["GPU_CHECK_OUT"])
DEVICE = os.environ["GPU_CHECK_DEVICE"]  # "cpu": the dry run, both passes on the CPU
POOL = int(os.environ["GPU_CHECK_POOL"])
LABELED = min(200, POOL // 5)
PICKS = min(100, POOL // 10)
TOL = {"embeddings": 1e-3, "scores": 5e-3, "kcenters_rel": 1e-4, "overlap": 0.9}


def pool_and_labeled():
    import datasets

    from svp_hf.data import load_pool

    datasets.disable_progress_bars()

    pool = load_pool(os.environ["GPU_CHECK_DATA"], "train").shuffle(seed=0).select(range(POOL)).flatten_indices()
    labeled = np.random.default_rng(0).choice(POOL, size=LABELED, replace=False)
    return pool, np.sort(labeled)


def score(name: str) -> None:
    import torch

    import svp_hf
    from svp_hf.proxies.features import EncoderFeatures

    pool, labeled = pool_and_labeled()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result, arrays = {"device": device}, {}
    texts = pool["text"][:]
    encoder = EncoderFeatures(max_length=128)
    encoder.transform(texts[:64])  # load the weights and warm the kernels before timing
    t0 = time.perf_counter()
    arrays["embeddings"] = encoder.transform(texts)
    seconds = time.perf_counter() - t0
    result["encode_rows_per_s"] = round(POOL / seconds, 1)
    for proxy, kwargs in (("embedding", {"max_length": 128}), ("hybrid", {"max_length": 128, "embedding_weight": 1})):
        for strategy in ("margin", "kcenters"):
            config = svp_hf.SelectionConfig(proxy=proxy, strategy=strategy, budget=PICKS, seed=0, proxy_kwargs=kwargs)
            t0 = time.perf_counter()
            selected = svp_hf.select(pool, config, labeled_indices=labeled)
            result[f"{proxy}_{strategy}_s"] = round(time.perf_counter() - t0, 3)
            arrays[f"{proxy}_{strategy}_picks"] = np.asarray(selected.indices)
            arrays[f"{proxy}_{strategy}_scores"] = np.asarray(selected.scores, dtype=np.float64)
            if strategy == "margin":
                arrays[f"{proxy}_probs"] = selected.proxy.predict_proba(pool)
    np.savez(OUT / f"pass_{name}.npz", **arrays)
    (OUT / f"pass_{name}.json").write_text(json.dumps(result))
    print(f"scoring pass {name} on {device}: encoder {result['encode_rows_per_s']} rows/s; "
          + ", ".join(f"{k} {v}" for k, v in result.items() if k.endswith("_s")), flush=True)


def _overlap(a, b) -> float:
    return len(set(a.tolist()) & set(b.tolist())) / max(1, len(a))


def _agree(a_picks, b_picks, a_scores, b_scores, tol) -> dict:
    finite = np.isfinite(a_scores) & np.isfinite(b_scores)
    diff = float(np.max(np.abs(a_scores[finite] - b_scores[finite]))) if finite.any() else 0.0
    same = bool(np.array_equal(a_picks, b_picks))
    overlap = _overlap(a_picks, b_picks)
    ok = same or (diff <= tol and overlap >= TOL["overlap"])
    return {"ok": ok, "identical": same, "overlap": round(overlap, 4), "max_score_diff": diff, "tolerance": tol}


def compare() -> int:
    import torch

    from svp_hf.proxies.base import ProxyOutputs
    from svp_hf.strategies import build_strategy
    from svp_hf.strategies.kcenters import greedy_k_centers

    cpu, gpu = np.load(OUT / "pass_cpu.npz"), np.load(OUT / "pass_gpu.npz")
    passes = {n: json.loads((OUT / f"pass_{n}.json").read_text()) for n in ("cpu", "gpu")}
    checks = {}
    diff = float(np.max(np.abs(cpu["embeddings"] - gpu["embeddings"])))
    checks["encoder embeddings"] = {"ok": diff <= TOL["embeddings"], "max_diff": diff, "tolerance": TOL["embeddings"]}
    for proxy in ("embedding", "hybrid"):
        checks[f"{proxy} proxy, margin"] = _agree(cpu[f"{proxy}_margin_picks"], gpu[f"{proxy}_margin_picks"],
                                                  cpu[f"{proxy}_margin_scores"], gpu[f"{proxy}_margin_scores"],
                                                  TOL["scores"])
        checks[f"{proxy} proxy, margin"]["max_prob_diff"] = float(np.max(np.abs(cpu[f"{proxy}_probs"]
                                                                               - gpu[f"{proxy}_probs"])))
        picks = (cpu[f"{proxy}_kcenters_picks"], gpu[f"{proxy}_kcenters_picks"])
        checks[f"{proxy} proxy, k-centers through select (reported)"] = {
            "ok": None, "identical": bool(np.array_equal(*picks)), "overlap": round(_overlap(*picks), 4)}

    _, labeled = pool_and_labeled()
    x = cpu["embeddings"]
    other = "cuda" if DEVICE == "cuda" else "cpu"
    runs = {}
    for device in ("cpu", other):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        picks, dists = greedy_k_centers(x, PICKS, centers=labeled, seed=0, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        runs[device] = (picks, dists, time.perf_counter() - t0)
    (a, da, ta), (b, db, tb) = runs["cpu"], runs[other]
    rel = float(np.max(np.abs(da[a] - db[b]) / np.maximum(np.abs(da[a]), 1e-12)))
    same = bool(np.array_equal(a, b))
    checks["k-centers, same input"] = {"ok": same or rel <= TOL["kcenters_rel"], "identical": same,
                                       "max_rel_pick_distance_diff": rel, "tolerance": TOL["kcenters_rel"],
                                       "cpu_s": round(ta, 4), f"{other}_s": round(tb, 4)}

    probs = cpu["embedding_probs"]
    outputs = ProxyOutputs(num_rows=len(x), probs=probs, embeddings=x)
    picked = {d: build_strategy("cluster_margin", device=d).select(outputs, PICKS, labeled=labeled, seed=0).indices
              for d in ("cpu", other)}
    checks["cluster_margin k-means, same input (reported)"] = {
        "ok": None, "identical": bool(np.array_equal(picked["cpu"], picked[other])),
        "overlap": round(_overlap(picked["cpu"], picked[other]), 4)}

    for name, check in checks.items():
        verdict = {True: "ok  ", False: "FAIL", None: "info"}[check["ok"]]
        detail = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in check.items() if k != "ok")
        print(f"[{verdict}] {name}: {detail}", flush=True)
    speed = passes["gpu"]["encode_rows_per_s"] / passes["cpu"]["encode_rows_per_s"]
    print(f"encoder throughput: cpu {passes['cpu']['encode_rows_per_s']} rows/s, {passes['gpu']['device']} "
          f"{passes['gpu']['encode_rows_per_s']} rows/s ({speed:.1f}x)", flush=True)
    (OUT / "agreement.json").write_text(json.dumps({"checks": checks, "passes": passes}, indent=1, default=str))
    return 0 if all(c["ok"] is not False for c in checks.values()) else 1


def train() -> int:
    import tempfile

    import torch

    import datasets
    import transformers

    from svp_hf.data import load_pool
    from svp_hf.training import train_target

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    steps = int(os.environ["GPU_CHECK_TRAIN_STEPS"])
    dry = DEVICE == "cpu"
    rows, evaluated, length = (40, 32, 32) if dry else (2000, 1000, 128)
    data = os.environ["GPU_CHECK_DATA"]
    train = load_pool(data, "train").shuffle(seed=1).select(range(rows)).flatten_indices()
    test = load_pool(data, "test").shuffle(seed=0).select(range(evaluated)).flatten_indices()
    args = {"max_steps": steps, "per_device_train_batch_size": 32 if not dry else 8, "seed": 0,
            "save_strategy": "no", "logging_strategy": "no", "per_device_eval_batch_size": 256, "disable_tqdm": True}
    if not dry:
        args["bf16"] = True
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        metrics = train_target(train, "minilm", Path(tmp) / "minilm", eval_dataset=test, max_length=length,
                               training_args=args)
        wall = time.perf_counter() - t0
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    ok = bool(np.isfinite(metrics["train_loss"])) and (dry or metrics["eval_accuracy"] > 0.5)
    print(f"[{'ok  ' if ok else 'FAIL'}] MiniLM target {'bf16 ' if not dry else ''}on {device}: {steps} steps, "
          f"train {metrics['train_samples_per_second']:.1f} rows/s, eval {metrics['eval_samples_per_second']:.1f} "
          f"rows/s, loss {metrics['train_loss']:.4f}, eval accuracy {metrics['eval_accuracy']:.4f} on {evaluated} "
          f"rows, {wall:.1f}s", flush=True)
    (OUT / "train.json").write_text(json.dumps({**metrics, "device": device, "wall_s": wall, "ok": ok}, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "score":
        score(sys.argv[2])
        sys.exit(0)
    sys.exit(compare() if step == "compare" else train())
PY

cd "$repo"
start=$SECONDS
echo "gpu_check: device $device, pool ${pool} rows, python $PYTHON, results in $out"
status=0
# the CPU pass: the GPU hidden, so every part of the library picks the CPU by itself
SVP_HF_CACHE="$work/cache_cpu" CUDA_VISIBLE_DEVICES="" "$PYTHON" "$work/gpu_check.py" score cpu
if [[ "$device" == cuda ]]; then
    SVP_HF_CACHE="$work/cache_gpu" "$PYTHON" "$work/gpu_check.py" score gpu
else  # dry run: the second pass on the CPU too
    SVP_HF_CACHE="$work/cache_gpu" CUDA_VISIBLE_DEVICES="" "$PYTHON" "$work/gpu_check.py" score gpu
fi
"$PYTHON" "$work/gpu_check.py" compare || status=1
if [[ "$device" == cuda ]]; then
    "$PYTHON" "$work/gpu_check.py" train || status=1
else
    CUDA_VISIBLE_DEVICES="" "$PYTHON" "$work/gpu_check.py" train || status=1
fi
"$PYTHON" - "$out" "$status" "$((SECONDS - start))" <<'PY'
import json, sys
from pathlib import Path

out, status, seconds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
summary = {"status": status, "seconds": seconds}
for name in ("agreement", "train"):
    path = out / f"{name}.json"
    if path.exists():
        summary[name] = json.loads(path.read_text())
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
PY
if [[ $status -eq 0 ]]; then
    echo "gpu_check: all checks passed in $((SECONDS - start)) s"
else
    echo "gpu_check: FAILED (see above) after $((SECONDS - start)) s" >&2
fi
exit $status
