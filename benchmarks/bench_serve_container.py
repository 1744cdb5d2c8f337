"""Serving from the container vs from the repo's environment: start to first answer, image size.

Both servers run the released model on a free port, alternating, ``--repeat`` times each: the
time from the start command to ``/health`` answering 200 and to the first ``/predict`` of a
photo. Needs the image (``podman build -f docker/serve.Dockerfile -t IMAGE .``).

Usage (repo root): python -m benchmarks.bench_serve_container --image localhost/emotion-serve:test
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks import emit
from tests.serve_fixtures import astronaut, free_port
from tests.test_containers import Podman

MODEL = "release/fer2013-v1"


def first_answers(launch: Callable[[], object], port: int, photo: bytes) -> tuple[float, float]:
    """Seconds from ``launch()`` to /health 200, and to the first /predict answer."""
    began = time.monotonic()
    launch()
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
        if time.monotonic() - began > 120:
            raise RuntimeError(f"no answer on port {port}")
    health = time.monotonic() - began
    response = httpx.post(f"{url}/predict", files={"file": ("a.jpg", photo)}, timeout=30)
    response.raise_for_status()
    return health, time.monotonic() - began


def serve_command(port: int) -> list[str]:
    return ["emotion", "serve", "--host", "127.0.0.1", "--port", str(port), "--model-dir", MODEL]


def in_container(podman: Podman, image: str, photo: bytes) -> tuple[float, float]:
    port = free_port()
    name = f"bench-serve-{port}"
    run = ["run", "-d", "--network", "host", "--name", name, image, *serve_command(port)]
    try:
        return first_answers(lambda: podman(*run), port, photo)
    finally:
        podman("rm", "-f", name, check=False)


def in_venv(photo: bytes, log: Path) -> tuple[float, float]:
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    with log.open("wb") as out:
        try:
            return first_answers(
                lambda: procs.append(
                    subprocess.Popen(serve_command(port), stdout=out, stderr=subprocess.STDOUT)
                ),
                port,
                photo,
            )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    buf = io.BytesIO()
    astronaut().save(buf, "JPEG", quality=90)
    photo = buf.getvalue()
    times: dict[str, list[tuple[float, float]]] = {"container": [], "venv": []}
    with tempfile.TemporaryDirectory() as tmp:
        podman = Podman(Path(tmp) / "containers.conf")
        for i in range(args.repeat):
            times["container"].append(in_container(podman, args.image, photo))
            times["venv"].append(in_venv(photo, Path(tmp) / f"venv-{i}.log"))
        size = int(podman("image", "inspect", "--format", "{{.Size}}", args.image).stdout)
    summary: dict[str, float] = {"image_mb": round(size / 1e6)}
    for kind, values in times.items():
        summary[f"{kind}_health_s"] = round(statistics.median(v[0] for v in values), 2)
        summary[f"{kind}_first_predict_s"] = round(statistics.median(v[1] for v in values), 2)
    summary["container_over_venv_first_predict"] = round(
        summary["container_first_predict_s"] / summary["venv_first_predict_s"], 2
    )
    emit(summary)


if __name__ == "__main__":
    main()
