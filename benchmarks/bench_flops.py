"""Compute efficiency of training on this CPU: achieved FLOP/s vs the measured matmul peak.

- *Peak:* the best of ``--repeats`` timed ``torch.mm`` calls of two square ``--n`` x ``--n``
  matrices (2 n^3 FLOP each) in fp32 and in bf16, with torch's default thread count.
- *Work per image:* ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward
  pass of a training batch (convolutions and matmuls; elementwise ops are not counted, so the
  achieved figure is a lower bound).
- *Achieved:* work per image x training images/s of the same steps (``bench_amp``'s loop: batch
  64, AdamW), fp32 and bf16 autocast, NCHW and ``channels_last``.

Usage: python benchmarks/bench_flops.py [--model emotion_cnn_s] [--size 48] [--steps 12]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_amp import steps_per_second  # the sibling script (benchmarks/ is on sys.path)
from torch.utils.flop_counter import FlopCounterMode

from emotion.tools.params_file import load_section
from emotion.training.model import build_model


def matmul_peak(n: int, dtype: torch.dtype, repeats: int) -> float:
    """FLOP/s of the fastest of ``repeats`` n x n matrix products."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def training_flops_per_image(name: str, size: int) -> float:
    """Counted FLOP of one forward + backward pass, per image (batch 64)."""
    model = build_model(load_section("model", name=name, in_chans=1, image_size=size), 6)
    x, y = torch.randn(64, 1, size, size), torch.randint(0, 6, (64,))
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="emotion_cnn_s")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    peaks = {d: matmul_peak(args.n, d, args.repeats) for d in (torch.float32, torch.bfloat16)}
    per_image = training_flops_per_image(args.model, args.size)
    print(f"threads {torch.get_num_threads()}; {args.model} {args.size}px: ", end="")
    print(f"{per_image / 1e6:.1f} MFLOP per training image (forward + backward)")
    print("| dtype | layout | img/s | achieved GFLOP/s | matmul peak GFLOP/s | share of peak |")
    print("|---|---|---:|---:|---:|---:|")
    for dtype in (torch.float32, torch.bfloat16):
        for layout in ("NCHW", "channels_last"):
            rate = steps_per_second(
                args.model,
                args.size,
                args.steps,
                None if dtype == torch.float32 else dtype,
                channels_last=layout == "channels_last",
            )
            achieved = rate * per_image
            print(
                f"| {str(dtype).removeprefix('torch.')} | {layout} | {rate:.0f} |"
                f" {achieved / 1e9:.1f} | {peaks[dtype] / 1e9:.1f} |"
                f" {achieved / peaks[dtype]:.1%} |"
            )


if __name__ == "__main__":
    main()
