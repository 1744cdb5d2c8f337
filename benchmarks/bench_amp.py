"""fp32 vs bf16 autocast training steps on this machine's CPU (or GPU), same run.

Usage: python benchmarks/bench_amp.py [--model emotion_cnn_s] [--size 48] [--steps 8]
"""

from __future__ import annotations

import argparse
import time

import torch

from emotion.tools.params_file import load_section
from emotion.training.model import build_model


def steps_per_second(
    name: str, size: int, steps: int, dtype: torch.dtype | None, *, channels_last: bool = False
) -> float:
    """Training images/s of AdamW steps on random batches of 64 (2 warm-up steps)."""
    torch.manual_seed(0)
    model = build_model(load_section("model", name=name, in_chans=1, image_size=size), 6)
    x, y = torch.randn(64, 1, size, size), torch.randint(0, 6, (64,))
    if channels_last:
        model, x = (
            model.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return 64 * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="emotion_cnn_s")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    fp32 = steps_per_second(args.model, args.size, args.steps, None)
    bf16 = steps_per_second(args.model, args.size, args.steps, torch.bfloat16)
    print(
        f"| {args.model} {args.size}px batch 64 | fp32 {fp32:.0f} img/s | bf16 {bf16:.0f} img/s "
        f"| {bf16 / fp32:.2f}x |"
    )


if __name__ == "__main__":
    main()
