#!/usr/bin/env bash
# The pretrained-target comparison (issue 15) on one GPU machine: every (pool, seed, group of methods) runs as a
# process of its own, side by side on the one GPU (each cell is a small MiniLM fine-tune that leaves most of an
# H100-class GPU idle), then each pool's cells are gathered into one results file with --cells-from.
#
#   bash benchmarks/gpu_cells.sh                                  # every pool, seeds 0 1 2, results in gpu_cells_out/
#   bash benchmarks/gpu_cells.sh --deadline 500 --out /tmp/res    # stop every process after 500 s (finished cells
#                                                                 # stay; the same command later resumes them)
#   bash benchmarks/gpu_cells.sh --pools "banking77 sst2" --seeds "0" --dry-run   # print the commands only
#
# Pools (4,000-row pools drawn from train, the whole eval split; MiniLM target, the recipe of benchmarks/svp_speedup.py):
#   banking77   initial 154 (2 of each class), budgets 400, 800, 1600
#   sst2        initial 100, budgets 200, 400, 800, 1600 (eval: validation)
#   ag_news     initial 100, budgets 200, 400, 800, 1600
#   imbalanced  AG News with Sci/Tech cut to 5% of its rows (--imbalance 3:0.05), initial 100, budgets 200, 400, 800
#   coreset     AG News: keep 30/50/70% by forgetting events, entropy, k-centers on MiniLM embeddings, random
# Groups of methods (one process each): "cm" the baseline and every proxy with cluster_margin, and random; "mg" the
# baseline and hybrid with margin, the embedding proxy with cluster_margin.
# Selection times of processes that share the machine are rough: read the speed-ups as such.
# Each process writes OUT/<pool>-<group>-s<seed>.{json,log} and keeps its cells in OUT/<...>.partial/; once every
# process of a pool has finished, OUT/<pool>.json gathers them (nothing is computed again).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
data="${SVP_SHARED_DATA:-$repo/../shared/data}"
out="gpu_cells_out"
deadline=""
seeds="0 1 2"
pools="banking77 sst2 ag_news imbalanced coreset"
dry=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --data) data="${2:-}"; shift 2 ;;
        --out) out="${2:-}"; shift 2 ;;
        --deadline) deadline="${2:-}"; shift 2 ;;
        --seeds) seeds="${2:-}"; shift 2 ;;
        --pools) pools="${2:-}"; shift 2 ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_cells.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -n "$deadline" && ! "$deadline" =~ ^[0-9]+$ ]]; then
    echo "gpu_cells.sh: --deadline takes seconds, got '$deadline'" >&2
    exit 2
fi
PYTHON="${PYTHON:-$([[ -x "$repo/.venv/bin/python" ]] && echo "$repo/.venv/bin/python" || echo python3)}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

cm="baseline+cluster_margin,hybrid+cluster_margin,random,fasttext+cluster_margin,tfidf+cluster_margin"
mg="baseline+margin,hybrid+margin,embedding+cluster_margin"
common=(--target minilm --full --pool-size 4000 --keep-cells)
settings() {  # the harness's arguments of a pool
    case "$1" in
        banking77) echo "--dataset $data/banking77 --initial 154 --budgets 400,800,1600" ;;
        sst2) echo "--dataset $data/sst2 --initial 100 --budgets 200,400,800,1600" ;;
        ag_news) echo "--dataset $data/ag_news --initial 100 --budgets 200,400,800,1600" ;;
        imbalanced) echo "--dataset $data/ag_news --initial 100 --budgets 200,400,800 --imbalance 3:0.05" ;;
        coreset) echo "--dataset $data/ag_news --initial 100 --budgets 200 --coreset" ;;
        *) echo "gpu_cells.sh: unknown pool '$1' (banking77 sst2 ag_news imbalanced coreset)" >&2; return 2 ;;
    esac
}
groups() { if [[ "$1" == coreset ]]; then echo none; else echo "cm mg"; fi; }
methods_of() { case "$1" in cm) echo "$cm" ;; mg) echo "$mg" ;; none) echo "" ;; esac; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"  # the processes run from the repository's root
[[ -d "$data" ]] && data="$(cd "$data" && pwd)"
start=$SECONDS
limit() { if [[ -n "$deadline" ]]; then echo "timeout -k 10 $((deadline - (SECONDS - start)))"; fi; }
for pool in $pools; do
    args="$(settings "$pool")" || exit 2
    for seed in $seeds; do
        for group in $(groups "$pool"); do
            name="$pool-$group-s$seed"
            # shellcheck disable=SC2086  # $args and $(limit) are word lists
            cmd=($(limit) "$PYTHON" -m benchmarks.svp_speedup $args "${common[@]}" --methods "$(methods_of "$group")"
                 --seeds "$seed" --out "$out/$name.json")
            if [[ -n "$dry" ]]; then
                printf '%q ' "${cmd[@]}"; echo
            else
                (cd "$repo" && "${cmd[@]}" >"$out/$name.log" 2>&1) &
            fi
        done
    done
done
[[ -n "$dry" ]] && exit 0
echo "gpu_cells: $(jobs -r | wc -l) processes started, results in $out"
while [[ $(jobs -r | wc -l) -gt 0 ]]; do
    sleep "${GPU_CELLS_POLL:-20}"
    echo "t=$((SECONDS - start)) s: $(jobs -r | wc -l) running, $(cat "$out"/*.partial/cells.json 2>/dev/null \
        | grep -o '"runs"' | wc -l) cells finished"
done
wait || true

status=0
for pool in $pools; do  # gather a pool once all its processes finished
    args="$(settings "$pool")"
    from=()
    methods=()
    complete=1
    for seed in $seeds; do
        for group in $(groups "$pool"); do
            name="$pool-$group-s$seed"
            [[ -f "$out/$name.json" ]] || complete=0
            from+=(--cells-from "$out/$name.partial")
        done
    done
    for group in $(groups "$pool"); do methods+=("$(methods_of "$group")"); done
    if [[ $complete -eq 0 ]]; then
        echo "gpu_cells: $pool not complete (the same command resumes its cells)"
        status=1
        continue
    fi
    all_methods="$(IFS=,; echo "${methods[*]}")"
    # shellcheck disable=SC2086
    (cd "$repo" && "$PYTHON" -m benchmarks.svp_speedup $args "${common[@]}" --methods "$all_methods" \
        --seeds "$(echo $seeds | tr ' ' ,)" "${from[@]}" --out "$out/$pool.json" >"$out/$pool.log" 2>&1) \
        && echo "gpu_cells: $pool gathered in $out/$pool.json" \
        || { echo "gpu_cells: gathering $pool failed (see $out/$pool.log)"; status=1; }
done
exit $status
