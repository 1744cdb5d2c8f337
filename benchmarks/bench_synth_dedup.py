"""Synthetic-image QC dedup at workstation scale: the stage's decision pass vs a naive loop.

Judges N candidate records (all passing the face/sharpness checks, with planted near-duplicates
of each other and of the real training images) exactly as the synthesize stage does
(``Synthesizer.decide``: multi-index Hamming search over real + accepted hashes), and with the
naive loop that compares every candidate with every real and every accepted hash. Both must
accept the same set.

Usage: python benchmarks/bench_synth_dedup.py [--candidates 100000] [--real 30000] [--radius 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from emotion.data.neardup import HammingIndex, hamming
from emotion.synthesize.store import SlotStore
from emotion.synthesize.synthesizer import Synthesizer
from emotion.tools.params_file import load_section

CLASSES = load_section("ingest").classes


def records(codes: np.ndarray) -> list[dict]:
    face = {"x": 50, "y": 50, "width": 120, "height": 120, "score": 0.95}
    return [
        {
            "slot_id": f"{CLASSES[i % len(CLASSES)]}-{i:06d}",
            "label": CLASSES[i % len(CLASSES)],
            "faces": [face],
            "generated_size": [224, 224],
            "sharpness": 500.0,
            "phash": f"{int(code):016x}",
        }
        for i, code in enumerate(codes)
    ]


def naive(recs: list[dict], real: np.ndarray, needs: dict[str, int], radius: int) -> list[bool]:
    accepted_codes = np.zeros(len(recs), dtype=np.uint64)
    n_acc, taken, out = 0, dict.fromkeys(needs, 0), []
    for rec in recs:
        code = int(rec["phash"], 16)
        near_real = bool((hamming(code, real) <= radius).any())
        near_syn = bool((hamming(code, accepted_codes[:n_acc]) <= radius).any())
        ok = not near_real and not near_syn and taken[rec["label"]] < needs[rec["label"]]
        if ok:
            accepted_codes[n_acc] = code
            n_acc += 1
            taken[rec["label"]] += 1
        out.append(ok)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=30_000)
    parser.add_argument("--radius", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    real = rng.integers(0, 2**63, args.real, dtype=np.uint64) * np.uint64(2)
    cand = rng.integers(0, 2**63, args.candidates, dtype=np.uint64) * np.uint64(2)
    flips = lambda n: np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)  # noqa: E731
    k = args.candidates // 50  # 2% near-duplicates of real images, 2% of other candidates
    cand[:k] = real[rng.integers(0, args.real, k)] ^ flips(k)
    cand[k : 2 * k] = cand[rng.integers(2 * k, args.candidates, k)] ^ flips(k)
    rng.shuffle(cand)
    recs = records(cand)
    needs = dict.fromkeys(CLASSES, args.candidates)  # no class cap binds: dedup only

    params = load_section(
        "synth",
        min_face_confidence=0.5,
        min_face_size=0.1,
        min_sharpness=60.0,
        phash_min_distance=args.radius,
    )
    crop = load_section("crop")
    synth = Synthesizer(params, SlotStore(None), None, None, crop=crop, identity={}, output_size=48)
    start = time.perf_counter()
    index = HammingIndex(args.radius)
    for code in real.tolist():
        index.add(code)
    decisions = synth.decide(recs, needs, index)
    t_index = time.perf_counter() - start
    start = time.perf_counter()
    flags = naive(recs, real, needs, args.radius)
    t_naive = time.perf_counter() - start
    assert [d.accepted for d in decisions] == flags
    rejected = len(flags) - sum(flags)
    print(f"{args.candidates} candidates vs {args.real} real hashes, radius {args.radius}; ")
    print(f"{rejected} rejected as near-duplicates (same set both ways)\n")
    print("| method | seconds | speed-up |\n|---|---:|---:|")
    print(f"| naive loop (numpy per candidate) | {t_naive:.2f} | 1.0x |")
    print(f"| `Synthesizer.decide` (multi-index) | {t_index:.2f} | {t_naive / t_index:.1f}x |")


if __name__ == "__main__":
    main()
