"""DVC push and pull of the committed pipeline outputs: an S3 object store vs a local folder.

The object store is SeaweedFS's S3 gateway on loopback (the one the tests use), so the figures
are DVC's and the S3 protocol's overhead, not a network's. Both remotes start empty and are
measured in the same run, alternating, ``--repeat`` times each; pulls go into an empty cache.

Usage (repo root, after ``make repro``): python -m benchmarks.bench_remote [--repeat 3] [--jobs 4]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import emit
from tests.object_store import ObjectStore, seaweedfs

REPO = Path(__file__).resolve().parents[1]


def dvc(project: Path, *args: str) -> None:
    subprocess.run(["dvc", *args], cwd=project, check=True, capture_output=True, text=True)


def clone(dest: Path, cache: Path) -> Path:
    """A clone of the committed repo whose DVC cache is ``cache``."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    dvc(dest, "cache", "dir", "--local", str(cache))
    return dest


def add_remote(project: Path, name: str, store: ObjectStore | None, where: str) -> None:
    if store is None:
        dvc(project, "remote", "add", "-f", "-d", "--local", name, where)
    else:
        store.add_remote(project, name, where)


def timed(project: Path, *args: str) -> float:
    start = time.perf_counter()
    dvc(project, *args)
    return time.perf_counter() - start


def tree_size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4, help="dvc push/pull --jobs")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, seaweedfs(Path(tmp) / "seaweedfs") as store:
        work = Path(tmp)
        source = clone(work / "source", REPO / ".dvc/cache")
        size = None
        for i in range(args.repeat):
            for kind in ("local", "s3"):
                target = f"run{i}" if kind == "s3" else str(work / f"remote-{i}")
                add_remote(source, kind, store if kind == "s3" else None, target)
                push = timed(source, "push", "-r", kind, "--jobs", str(args.jobs))
                if size is None and kind == "local":
                    size = tree_size(Path(target))
                cache = work / f"cache-{kind}-{i}"
                puller = clone(work / f"pull-{kind}-{i}", cache)
                add_remote(puller, kind, store if kind == "s3" else None, target)
                pull = timed(puller, "pull", "-r", kind, "--jobs", str(args.jobs))
                assert tree_size(cache)[1] > 0
                shutil.rmtree(puller)
                shutil.rmtree(cache)
                entry = results.setdefault(kind, {"push_s": [], "pull_s": []})
                entry["push_s"].append(push)
                entry["pull_s"].append(pull)
    files, nbytes = size or (0, 0)
    summary = {"files": files, "megabytes": round(nbytes / 1e6, 1), "jobs": args.jobs}
    for kind, times in results.items():
        for op, values in times.items():
            median = statistics.median(values)
            summary[f"{kind}_{op}"] = round(median, 2)
            summary[f"{kind}_{op.removesuffix('_s')}_mb_per_s"] = round(nbytes / 1e6 / median, 1)
    for op in ("push_s", "pull_s"):
        summary[f"s3_over_local_{op.removesuffix('_s')}"] = round(
            summary[f"s3_{op}"] / summary[f"local_{op}"], 2
        )
    emit(summary)


if __name__ == "__main__":
    main()
