"""Latency and throughput of several runtimes on the same inputs, measured in alternating blocks.

Runtimes take turns in short blocks (not call by call: thread pools that spin-wait after a call
would steal the cores from the next runtime), so a noisy neighbour slows all of them alike and
the ratios between them stay meaningful on shared machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Runtime = Callable[[np.ndarray], Any]


def _interleaved(
    runtimes: Mapping[str, Runtime], batches: list[np.ndarray], warmup: int, rounds: int = 5
) -> dict[str, np.ndarray]:
    """Seconds per call for each runtime; every runtime sees the same batch sequence."""
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    size = -(-len(batches) // rounds)
    for block in (batches[i : i + size] for i in range(0, len(batches), size)):
        for name, fn in runtimes.items():
            for batch in batches[:warmup]:
                fn(batch)
            for batch in block:
                start = time.perf_counter()
                fn(batch)
                times[name].append(time.perf_counter() - start)
    return {name: np.asarray(t) for name, t in times.items()}


def measure(
    runtimes: Mapping[str, Runtime],
    images: np.ndarray,
    *,
    runs: int,
    batch_size: int,
    warmup: int = 5,
) -> dict[str, dict[str, float]]:
    """Batch-1 p50/p95 latency (ms) and batch-``batch_size`` throughput (images/s) per runtime.

    Batch-1 calls cycle through ``images`` one by one; throughput calls cycle through
    consecutive slices of ``batch_size`` images, ``runs`` of each.
    """
    n = len(images)
    singles = [images[i % n : i % n + 1] for i in range(runs)]
    starts = range(0, max(n - batch_size, 0) + 1, batch_size) or [0]
    bigs = [images[s : s + batch_size] for s in starts]
    bigs = [bigs[i % len(bigs)] for i in range(max(runs // 4, 3))]
    one = _interleaved(runtimes, singles, warmup)
    many = _interleaved(runtimes, bigs, 1)
    report = {}
    for name in runtimes:
        ms = one[name] * 1e3
        report[name] = {
            "batch1_p50_ms": float(np.percentile(ms, 50)),
            "batch1_p95_ms": float(np.percentile(ms, 95)),
            "batch1_mean_ms": float(ms.mean()),
            f"batch{batch_size}_images_per_s": float(sum(len(b) for b in bigs) / many[name].sum()),
        }
    return report
