"""Load test of ``emotion serve``: concurrent clients over loopback HTTP vs in-process inference.

Starts the server as a subprocess (uvicorn, 127.0.0.1, a free port), then ``--clients`` threads
post, in turn, a FER-style 48 px face crop and a 512 px photo (scikit-image's astronaut) for
``--seconds``. Reports requests/s, p50/p99 latency per image and the error count (must be 0).
Baselines from the same run, measured before the server starts: ONNX Runtime alone (batch 1 on
the preprocessed crop) and the whole in-process pipeline (decode, detect, crop, classify).

With ``--workers 1 2``, the load runs once per worker count (``emotion serve --workers N``), one
after the other in the same run.

Usage (repo root): python -m benchmarks.bench_serve_load [--model-dir models] [--variant fp32]
       [--clients 8] [--seconds 20] [--workers 1 2] [--json metrics.json]
Needs an exported model (``dvc repro export``). Clients and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from skimage import data as skdata

from benchmarks import emit
from emotion.assets.model_files import DEFAULT_FACE_MODEL
from emotion.serve import ServeSettings
from emotion.serve.inference import Predictor
from tests.serve_fixtures import free_port

ASTRONAUT_FACE = (177, 82, 272, 177)  # the face's box in astronaut(), left/top/right/bottom


def sample_images() -> dict[str, bytes]:
    photo = Image.fromarray(skdata.astronaut())
    crop = photo.crop(ASTRONAUT_FACE).convert("L").resize((48, 48))
    encoded = {}
    for name, image in (("crop48", crop), ("photo512", photo)):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        encoded[name] = buf.getvalue()
    return encoded


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``fn`` in one thread, after one warm-up call."""
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def baselines(settings: ServeSettings, images: dict[str, bytes], seconds: float) -> dict:
    with Predictor.from_settings(settings) as predictor:
        model, prep = predictor.model, predictor.model.contract.preprocessing
        gray = prep.image_to_gray(Image.open(io.BytesIO(images["crop48"])))
        batch = prep.batch([gray])
        out = {"ort_batch1_per_s": rate(lambda: model.logits(batch), seconds)}
        for name, data in images.items():
            out[f"pipeline_{name}_per_s"] = rate(lambda d=data: predictor.predict_bytes(d), seconds)
    return out


def start_server(args: argparse.Namespace, port: int, workers: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "emotion.tools.cli", "serve", "--model-dir", str(args.model_dir)]
    cmd += ["--variant", args.variant, "--port", str(port), "--face-model", str(args.face_model)]
    cmd += ["--workers", str(workers)]
    env = {**os.environ, "GLOG_minloglevel": "2"}
    server = subprocess.Popen(  # the access log goes to stderr: not measured here
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}: {' '.join(cmd)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not become healthy within 120 s")


def load(url: str, images: dict[str, bytes], clients: int, seconds: float) -> dict:
    names = list(images)
    records: list[tuple[str, float, int]] = []  # (image, latency s, status; 0 = transport error)
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                name = names[k % len(names)]
                start = time.perf_counter()
                try:
                    status = http.post("/predict", files={"file": ("f", images[name])}).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    records.append((name, time.perf_counter() - start, status))
                k += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    result: dict[str, Any] = {
        "requests": len(records),
        "errors": sum(status != 200 for _, _, status in records),
        "requests_per_s": len(records) / elapsed,
    }
    for name in names:
        ms = np.array([lat for n, lat, _ in records if n == name]) * 1e3
        result[name] = {
            "requests": len(ms),
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
        }
    return result


def markdown(report: dict) -> str:
    base = report["baseline"]
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| ONNX Runtime alone, batch 1 | {base['ort_batch1_per_s']:.0f} /s |",
        f"| in-process pipeline, 48 px crop | {base['pipeline_crop48_per_s']:.0f} /s |",
        f"| in-process pipeline, 512 px photo | {base['pipeline_photo512_per_s']:.0f} /s |",
    ]
    for workers, http in report["http"].items():
        label = f"HTTP, {workers} worker(s), {report['clients']} clients"
        rows.append(f"| {label}, mixed | {http['requests_per_s']:.0f} req/s |")
        rows += [
            f"| {label}, {name} p50 / p99 | {http[name]['p50_ms']:.1f} / "
            f"{http[name]['p99_ms']:.1f} ms |"
            for name in ("crop48", "photo512")
        ]
        rows.append(f"| {label}, errors | {http['errors']} of {http['requests']} |")
        rows.append(f"| {label}, req/s over in-process | {http['over_pipeline']:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--variant", choices=["fp32", "int8"], default="fp32")
    parser.add_argument("--face-model", type=Path, default=DEFAULT_FACE_MODEL)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()

    images = sample_images()
    settings = ServeSettings(args.model_dir, args.variant, face_model=args.face_model)
    base = baselines(settings, images, args.baseline_seconds)
    # the HTTP mix alternates the two images, so compare with the harmonic mean of their rates
    pipeline = 2 / (1 / base["pipeline_crop48_per_s"] + 1 / base["pipeline_photo512_per_s"])
    runs = {}
    for workers in args.workers:
        port = free_port()
        server = start_server(args, port, workers)
        try:
            runs[workers] = load(f"http://127.0.0.1:{port}", images, args.clients, args.seconds)
        finally:
            server.terminate()
            server.wait(30)
        runs[workers]["over_pipeline"] = runs[workers]["requests_per_s"] / pipeline
    report = {
        "variant": args.variant,
        "clients": args.clients,
        "seconds": args.seconds,
        "cpu_count": os.cpu_count(),
        "baseline": base,
        "http": runs,
    }
    emit(report, args.json)
    print(markdown(report))
    failed = sum(run["errors"] for run in runs.values())
    if failed:
        raise SystemExit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
