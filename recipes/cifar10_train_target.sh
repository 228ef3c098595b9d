#!/usr/bin/env bash
# bash recipes/cifar10_train_target.sh out/cifar10_al/labeled out/cifar10_r164_al
# Train the paper's CIFAR-10 target, a pre-activation ResNet-164 (timm architecture registered by svp-hf), on a
# selected folder (`svp-hf select/coreset` output or `active-learn`'s DIR/labeled) with the Trainer under Accelerate.
# The result loads with transformers' Auto classes after `import svp_hf.models.cifar_resnet` (registers the network).
# On a GPU machine: NUM_PROCESSES=<gpus>. On a CPU-only machine, two processes (gloo) need --multi_gpu (accelerate's
# --cpu silently starts one process) and svp-hf trains on the CPU when no GPU is present.
set -euo pipefail
DATA=${1:?selected folder}
OUT=${2:?output folder}
NUM_PROCESSES=${NUM_PROCESSES:-1}
MULTI=$([ "$NUM_PROCESSES" -gt 1 ] && echo --multi_gpu || true)
accelerate launch $MULTI --num_processes "$NUM_PROCESSES" --main_process_port "${PORT:-29501}" -m svp_hf train \
  --dataset "$DATA" --image-column image --model timm/cifar_preact_resnet164 \
  --eval-dataset ../shared/data/cifar10 --eval-split test --output-dir "$OUT" \
  --num_train_epochs 181 --learning_rate 0.1 --per_device_train_batch_size 128 --weight_decay 5e-4 \
  "${@:3}"
