"""Benchmark the balance stage on FER2013 and DVC speed for packed vs per-file storage.

Usage: python benchmarks/bench_balance_storage.py --fer data/external/fer2013 [--work DIR]

1. Runs the ingest and balance stage scripts with the ``fer2013-cpu`` profile on the given
   folder (1 worker vs all cores) and reports images/s.
2. Puts the balance output under DVC twice in a scratch repo: as packed (``.npy`` + CSV, what
   the stage writes) and as one PNG per image (the per-file alternative), and times
   ``dvc add``, a no-change ``dvc status``, ``dvc push`` to a local remote and ``dvc pull`` into
   an empty cache/workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from emotion.tools import profiles

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, **env: str) -> float:
    """Run a command, fail loudly, return wall seconds."""
    start = time.perf_counter()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    full_env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1", **env}
    done = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def stage_timings(fer: Path, work: Path) -> list[tuple[str, int, int, float]]:
    params = profiles.render(
        "fer2013-cpu",
        {"ingest.source": str(fer.resolve())},
        REPO / "params.yaml",
        REPO / "profiles",
        force=True,
    )
    (work / "params.yaml").write_text(params)
    cores = len(os.sched_getaffinity(0))
    rows = []
    ingest = [
        sys.executable,
        str(REPO / "stages/ingest.py"),
        "--out",
        "ingest",
        "--report",
        "eda.json",
        "--metrics",
        "eda-headline.json",
        "--plots",
        "plots",
    ]
    run(ingest, work)
    for workers in (1, cores):
        balance = [
            sys.executable,
            str(REPO / "stages/balance.py"),
            "--ingest",
            "ingest",
            "--out",
            "balance",
            "--report",
            "balance.json",
            "--plots",
            "plots",
        ]
        seconds = run(balance, work, EMOTION_WORKERS=str(workers))
        metrics = json.loads((work / "balance.json").read_text())
        originals = json.loads((work / "eda.json").read_text())["total"]
        rows.append(
            ("balance stage (decode, pHash, split, augment, write)", originals, workers, seconds)
        )
        rows.append(("  output images", sum(metrics["split_sizes"].values()), workers, seconds))
    return rows


def write_per_file(packed: Path, out: Path) -> int:
    n = 0
    for split in ("train", "val", "test"):
        array = np.load(packed / f"{split}.npy")
        frame = pd.read_csv(packed / f"{split}.csv")
        for idx, label in zip(frame["index"], frame["label"], strict=True):
            path = out / split / label / f"{idx:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array[idx]).save(path)
            n += 1
    return n


def dvc_timings(name: str, data: Path, scratch: Path) -> dict[str, float]:
    repo = scratch / f"repo-{name}"
    repo.mkdir()
    shutil.move(str(data), repo / "data")
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "remote", "add", "-d", "storage", str(scratch / f"remote-{name}")], repo)
    out = {"files": sum(1 for p in (repo / "data").rglob("*") if p.is_file())}
    out["dvc add"] = run(["dvc", "add", "data"], repo)
    out["dvc status (no change)"] = run(["dvc", "status"], repo)
    out["dvc push"] = run(["dvc", "push"], repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    out["dvc pull (empty cache)"] = run(["dvc", "pull"], repo)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fer", type=Path, required=True)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    scratch = Path(args.work or tempfile.mkdtemp(prefix="bench-balance-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}; scratch {scratch}\n"
    )
    rows = stage_timings(args.fer, scratch)
    print("| step | images | workers | seconds | images/s |\n|---|---:|---:|---:|---:|")
    for name, n, workers, seconds in rows:
        print(f"| {name} | {n} | {workers} | {seconds:.1f} | {n / seconds:,.0f} |")

    packed = scratch / "balance"
    per_file = scratch / "per-file"
    n = write_per_file(packed, per_file)
    print(f"\nper-file copy: {n} PNG files")
    results = {
        "packed (.npy + CSV)": dvc_timings("packed", packed, scratch),
        "per-file PNG": dvc_timings("perfile", per_file, scratch),
    }
    steps = [k for k in next(iter(results.values())) if k != "files"]
    print("\n| storage | files | " + " | ".join(steps) + " |")
    print("|---|---:|" + "---:|" * len(steps))
    for name, r in results.items():
        print(f"| {name} | {r['files']} | " + " | ".join(f"{r[s]:.1f} s" for s in steps) + " |")
    base, alt = results["packed (.npy + CSV)"], results["per-file PNG"]
    print("\n| per-file / packed | " + " | ".join(f"{alt[s] / base[s]:.1f}x" for s in steps) + " |")
    if not args.work:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
