"""Benchmark the data stages: demo generation and ingest, 1 worker vs all cores, same run.

Usage: python benchmarks/bench_data_stages.py [--demo-count 3000] [--fer PATH] [--repeat 2]
Prints a Markdown table (images/s and the speed-up ratio against 1 worker).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from emotion.data.ingest import ingest
from emotion.data.labels import LabelMap
from emotion.demo_data.dataset import generate_dataset
from emotion.tools.params_file import load_params, load_section


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_ingest(
    source: Path, labels: LabelMap, work: Path, workers: int, repeat: int
) -> tuple[float, int]:
    """Best wall time of ``repeat`` ingests of ``source`` and the number of images kept."""
    kept = 0

    def once() -> None:
        nonlocal kept
        result = ingest(
            source,
            labels,
            on_corrupt="fail",
            scratch=work / "scratch",
            root=Path.cwd(),
            workers=workers,
        )
        kept = len(result.manifest)

    return best_of(repeat, once), kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo-count", type=int, default=3000)
    parser.add_argument("--fer", type=Path, help="FER2013-style folder to ingest")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    params = load_params()
    cores = len(os.sched_getaffinity(0))
    spec = load_section("demo_data", count=args.demo_count)
    labels = LabelMap(params.ingest.classes, params.ingest.aliases, params.ingest.drop)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for workers in (1, cores):
            t = best_of(args.repeat, lambda w=workers: generate_dataset(spec, work / "demo", w))
            rows.append(("demo_data generate", args.demo_count, workers, t))
        sources = [("ingest demo", work / "demo")]
        if args.fer:
            sources.append(("ingest FER2013", args.fer))
        for name, source in sources:
            for workers in (1, cores):
                seconds, n = time_ingest(source, labels, work, workers, args.repeat)
                rows.append((name, n, workers, seconds))
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores, "
        f"Python {platform.python_version()}\n"
    )
    print(f"| step | images | workers | seconds (best of {args.repeat}) | images/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    base = {}
    for name, n, workers, t in rows:
        base.setdefault(name, t)
        print(f"| {name} | {n} | {workers} | {t:.2f} | {n / t:,.0f} | {base[name] / t:.2f}x |")


if __name__ == "__main__":
    main()
