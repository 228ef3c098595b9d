"""VDCNN training throughput (forward + backward + SGD step, examples/s) on this machine, with what might speed it up.

    python -m benchmarks.vdcnn_throughput --out benchmarks/results/vdcnn_throughput.json
    python -m benchmarks.vdcnn_throughput --depths 9 --lengths 256 --variants fp32,bf16 --steps 3   # a quick look

Variants: ``fp32`` (baseline), ``bf16`` (CPU autocast), ``compile`` (``torch.compile``), ``threads1`` (one intra-op
thread, to see what the second core buys). Random character ids; batch 128 as in the reference.
"""

from __future__ import annotations

import argparse
import json
import time

from svp_hf.io import write_json_atomic


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depths", default="9,29")
    p.add_argument("--lengths", default="1014,256")
    p.add_argument("--variants", default="fp32,bf16,compile,threads1")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="timed steps after 2 warm-up steps")
    p.add_argument("--out", default=None)
    return p


def measure(depth: int, length: int, variant: str, batch_size: int, steps: int) -> dict:
    import torch

    from svp_hf.models import VDCNNConfig, VDCNNForSequenceClassification

    threads = torch.get_num_threads()
    torch.set_num_threads(1 if variant == "threads1" else threads)
    torch.manual_seed(0)
    model = VDCNNForSequenceClassification(VDCNNConfig(depth=depth, num_labels=4, max_chars=length)).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    forward = torch.compile(model) if variant == "compile" else model
    ids = torch.randint(2, 69, (batch_size, length))
    labels = torch.randint(0, 4, (batch_size,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            loss = forward(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    t0 = time.perf_counter()
    for _ in range(2):
        step()
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    torch.set_num_threads(threads)
    return {
        "depth": depth,
        "length": length,
        "variant": variant,
        "seconds_per_step": round(seconds, 3),
        "examples_per_s": round(batch_size / seconds, 1),
        "warmup_s": round(warmup, 1),
    }


def main(args: argparse.Namespace) -> list[dict]:
    rows = []
    for depth in (int(d) for d in args.depths.split(",")):
        for length in (int(n) for n in args.lengths.split(",")):
            for variant in args.variants.split(","):
                rows.append(measure(depth, length, variant, args.batch_size, args.steps))
                print(json.dumps(rows[-1]), flush=True)
    if args.out:
        write_json_atomic(args.out, rows, indent=1)
    return rows


if __name__ == "__main__":
    main(make_parser().parse_args())
