"""Near-duplicate search: multi-index hashing vs the naive pairwise loop, same codes, same run.

Usage: python benchmarks/bench_neardup.py [--n 100000] [--big 100000] [--radius 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from emotion.data.neardup import HammingIndex, hamming, near_pairs


def naive_pairs(codes: np.ndarray, radius: int) -> int:
    found = 0
    for i in range(len(codes) - 1):
        found += int((hamming(int(codes[i]), codes[i + 1 :]) <= radius).sum())
    return found


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--big", type=int, default=100000)
    parser.add_argument("--radius", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    big = rng.integers(0, 2**63, args.big, dtype=np.uint64) * np.uint64(2)
    for k in range(args.big // 100):  # plant near-duplicates
        big[rng.integers(args.big)] = big[rng.integers(args.big)] ^ np.uint64(1 << int(k % 64))
    small = big[: args.n]

    t_naive, n_naive = timed(lambda: naive_pairs(small, args.radius))
    t_mih, pairs = timed(lambda: near_pairs(small, args.radius))
    assert len(pairs) == n_naive
    t_big, big_pairs = timed(lambda: near_pairs(big, args.radius))

    def incremental() -> int:
        index, hits = HammingIndex(args.radius), 0
        for code in big.tolist():
            hits += bool(index.query(code))
            index.add(code)
        return hits

    t_inc, _ = timed(incremental)
    print(f"radius {args.radius}\n")
    print(
        "| method | codes | pairs found | seconds | speed-up vs naive |\n|---|---:|---:|---:|---:|"
    )
    print(f"| naive pairwise loop | {args.n} | {n_naive} | {t_naive:.2f} | 1.0x |")
    speedup = t_naive / t_mih
    print(f"| near_pairs (multi-index) | {args.n} | {len(pairs)} | {t_mih:.2f} | {speedup:.1f}x |")
    if args.big != args.n:
        print(f"| near_pairs (multi-index) | {args.big} | {len(big_pairs)} | {t_big:.2f} | |")
    print(f"| HammingIndex add+query | {args.big} | | {t_inc:.2f} | |")


if __name__ == "__main__":
    main()
