"""The on-device client against the server, in one run on one machine.

1. Camera loop frames/s in headless chromium (fake camera playing a 640x480 video of a face):
   on the device (onnxruntime-web WebAssembly + mediapipe Tasks for Web) and through the server
   (the same page posting each frame to ``/predict``).
2. Server round trip of one such frame from Python (p50 of ``--requests``).
3. ``?explain=true`` (occlusion saliency) against a plain ``/predict`` on the same frame.
4. The access-log + Prometheus middleware: ``/health`` of a bare app with and without it,
   in-process.
Requests of each pair are interleaved so that load on the machine hits both alike.

Usage (repo root): python -m benchmarks.bench_client [--model-dir models] [--seconds 20]
Needs an exported model (``dvc repro export``), ``make setup`` (the client's npm packages) and
chromium (``/usr/bin/chromium`` or ``EMOTION_CHROMIUM``).
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Page, sync_playwright
from skimage import data as skdata

from emotion.assets.model_files import DEFAULT_FACE_MODEL
from emotion.serve import ServeSettings, create_app
from emotion.serve.launcher import serve_in_thread
from emotion.serve.observability import ServingMetrics, install
from tests.browser_fixtures import launch, write_y4m


def camera_frame() -> Image.Image:
    """A 640x480 frame, like a laptop webcam's, with scikit-image's astronaut's head and
    shoulders filling its height (a ~130 px face, a person at arm's length)."""
    frame = Image.new("RGB", (640, 480), (90, 90, 90))
    head = Image.fromarray(skdata.astronaut()).crop((77, 0, 437, 360)).resize((480, 480))
    frame.paste(head, (80, 0))
    return frame


def frame_rate(page: Page, seconds: float) -> dict[str, float]:
    """Frames the page's camera loop finished per second over ``seconds`` (after a warm-up)."""
    count = "Number(document.body.dataset.analysed ?? 0)"
    page.wait_for_function(f"{count} >= 3", timeout=120_000)
    start_frames, start = page.evaluate(count), time.perf_counter()
    samples = []
    while time.perf_counter() - start < seconds:
        timings = page.evaluate("window.emotion.state.last?.result?.timings ?? null")
        if timings:
            samples.append(timings["detect_ms"] + timings["classify_ms"])
        time.sleep(0.25)
    frames = page.evaluate(count) - start_frames
    result = {"frames_per_s": frames / (time.perf_counter() - start), "frames": frames}
    if samples:
        result["pipeline_ms_p50"] = float(np.median(samples))
    return result


def camera_rates(url: str, seconds: float, video: Path) -> dict[str, Any]:
    with sync_playwright() as pw:
        browser = launch(pw, camera_video=video)
        rates: dict[str, Any] = {}
        for engine in ("device", "server"):
            page = browser.new_context().new_page()
            page.goto(f"{url}/app/")
            page.wait_for_function("document.body.dataset.ready !== undefined", timeout=120_000)
            rates["threads"] = page.evaluate("window.emotion.state.pipeline?.classifier.threads")
            if engine == "server":
                page.check('input[value="server"]')
            page.click("#camera")
            rates[engine] = frame_rate(page, seconds)
            if engine == "device":
                rates["frame_png"] = page.evaluate("window.emotion.snapshot()")["png"]
            page.context.close()
        browser.close()
    return rates


def interleaved_ms(calls: dict[str, Any], n: int) -> dict[str, float]:
    """p50 milliseconds of each callable, called in turn ``n`` times (after one warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(n):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: float(np.median(ms)) for name, ms in times.items()}


def middleware_cost(n: int) -> dict[str, float]:
    """``/health`` p50 of two bare apps, with and without the observability middleware, called
    in-process (``TestClient``: the app's own cost, without loopback TCP's timing effects)."""
    clients = {}
    for name in ("bare", "observed"):
        app = FastAPI()
        app.get("/health")(lambda: {"status": "ok"})
        if name == "observed":
            install(app, ServingMetrics({"variant": "fp32"}))
        clients[name] = TestClient(app)
    return interleaved_ms({name: lambda c=c: c.get("/health") for name, c in clients.items()}, n)


def markdown(report: dict[str, Any]) -> str:
    cam, trip, mw = report["camera"], report["round_trip_ms"], report["middleware_ms"]
    device, server = cam["device"], cam["server"]
    return "\n".join(
        [
            "| measure | value |",
            "|---|---:|",
            f"| camera loop on the device (WASM, {cam['threads']} thread(s)) | "
            f"{device['frames_per_s']:.1f} frames/s |",
            f"| in-page pipeline per frame (detect + classify), p50 | "
            f"{device.get('pipeline_ms_p50', float('nan')):.1f} ms |",
            f"| camera loop through the server (same page) | "
            f"{server['frames_per_s']:.1f} frames/s |",
            f"| device over server | {device['frames_per_s'] / server['frames_per_s']:.2f}x |",
            f"| server round trip of one frame (Python client), p50 | {trip['plain']:.1f} ms |",
            f"| same with ?explain=true, p50 | {trip['explain']:.1f} ms "
            f"({trip['explain'] / trip['plain']:.2f}x) |",
            f"| /health in-process without / with access log + metrics, p50 | {mw['bare']:.2f} / "
            f"{mw['observed']:.2f} ms ({mw['observed'] - mw['bare']:+.2f} ms) |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--face-model", type=Path, default=DEFAULT_FACE_MODEL)
    parser.add_argument("--client-dir", type=Path, default=Path("client"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    settings = ServeSettings(
        model_dir=args.model_dir, face_model=args.face_model, client_dir=args.client_dir
    )
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(create_app(settings)) as url:
        video = write_y4m(camera_frame(), Path(tmp) / "camera.y4m", frames=30)
        camera = camera_rates(url, args.seconds, video)
        png = base64.b64decode(camera.pop("frame_png"))
        with httpx.Client(timeout=60) as http:

            def post(query: str) -> None:
                response = http.post(f"{url}/predict{query}", files={"file": ("f.png", png)})
                response.raise_for_status()

            trip = interleaved_ms(
                {"plain": lambda: post(""), "explain": lambda: post("?explain=true")},
                args.requests,
            )
    report = {
        "cpu_count": os.cpu_count(),
        "camera": camera,
        "round_trip_ms": trip,
        "middleware_ms": middleware_cost(20 * args.requests),
    }
    print(report)
    print(markdown(report))


if __name__ == "__main__":
    main()
