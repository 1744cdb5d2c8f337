"""Training-step throughput on this machine's CPU, same run: fp32 vs bf16 autocast, and with
``--layouts`` bf16 in NCHW vs ``channels_last``, each eager and ``torch.compile``d.

Usage: python benchmarks/bench_amp.py [--model emotion_cnn_s] [--size 48] [--steps 8]
       [--layouts] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from emotion.tools.params_file import load_section
from emotion.training.model import build_model


def steps_per_second(
    name: str,
    size: int,
    steps: int,
    dtype: torch.dtype | None,
    *,
    channels_last: bool = False,
    compile_model: bool = False,
) -> float:
    """Training images/s of AdamW steps on random batches of 64 (2 warm-up steps, which also
    absorb ``torch.compile``'s compilation)."""
    torch.manual_seed(0)
    model = build_model(load_section("model", name=name, in_chans=1, image_size=size), 6)
    x, y = torch.randn(64, 1, size, size), torch.randint(0, 6, (64,))
    if channels_last:
        model, x = (
            model.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    forward = torch.compile(model) if compile_model else model
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return 64 * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="emotion_cnn_s")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--layouts", action="store_true", help="bf16: NCHW/channels_last x compile")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.layouts:
        layouts(args)
        return
    fp32 = steps_per_second(args.model, args.size, args.steps, None)
    bf16 = steps_per_second(args.model, args.size, args.steps, torch.bfloat16)
    print(
        f"| {args.model} {args.size}px batch 64 | fp32 {fp32:.0f} img/s | bf16 {bf16:.0f} img/s "
        f"| {bf16 / fp32:.2f}x |"
    )


def layouts(args: argparse.Namespace) -> None:
    """bf16 img/s per (layout, compile), interleaved over ``rounds``; the median of each."""
    variants = [(cl, comp) for comp in (False, True) for cl in (False, True)]
    rates: dict[tuple[bool, bool], list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for cl, comp in variants:
            rate = steps_per_second(
                args.model, args.size, args.steps, torch.bfloat16, channels_last=cl,
                compile_model=comp,
            )  # fmt: skip
            rates[(cl, comp)].append(rate)
    base = statistics.median(rates[(False, False)])
    print("| bf16 training steps | img/s (median) | vs NCHW eager |")
    print("|---|---:|---:|")
    for (cl, comp), values in rates.items():
        name = f"{'channels_last' if cl else 'NCHW'}, {'torch.compile' if comp else 'eager'}"
        median = statistics.median(values)
        row = f"{args.model} {args.size}px batch 64, {name}"
        print(f"| {row} | {median:.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
