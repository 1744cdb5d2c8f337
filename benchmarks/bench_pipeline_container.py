"""The pipeline in its container vs in the repo's environment: a tiny-config `dvc repro`.

Two fresh copies of the repo with the test suite's tiny params (``tests.conftest.TINY``), one
`dvc repro` each: with the repo's `.venv`, and in the pipeline image on the copy mounted at
/work. Prints the wall times, their ratio and the image size as JSON. Needs the image
(``podman build -f docker/pipeline.Dockerfile -t IMAGE .``).

Usage (repo root):
    python -m benchmarks.bench_pipeline_container --image localhost/emotion-pipeline:test
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks import emit
from tests.conftest import commit, copy_repo, run
from tests.test_containers import Podman, pipeline_run


def timed_repro(image: str, podman: Podman, folder: Path) -> dict[str, float]:
    """Seconds of `dvc repro` in the environment, then in the container, on fresh copies."""
    seconds = {}
    for where in ("environment", "container"):
        project = copy_repo(folder / where)
        commit(project, "tiny config")
        began = time.monotonic()
        if where == "container":
            podman(*pipeline_run(image, project), "dvc", "repro")
        else:
            run(["dvc", "repro"], project)
        seconds[where] = round(time.monotonic() - began, 1)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", default="localhost/emotion-pipeline:test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        podman = Podman(Path(tmp) / "containers.conf")
        seconds = timed_repro(args.image, podman, Path(tmp))
        size = int(podman("image", "inspect", "--format", "{{.Size}}", args.image).stdout)
    ratio = round(seconds["container"] / seconds["environment"], 2)
    emit({"repro_s": seconds, "ratio": ratio, "image_bytes": size})


if __name__ == "__main__":
    main()
