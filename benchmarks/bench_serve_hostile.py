"""Hostile load on ``emotion serve``: memory, answers and health under a burst of costly requests.

Starts the server as a subprocess on loopback, then runs three phases against it:

1. normal load: ``--normal-clients`` threads post a 512 px photo and a 48 px face crop for
   ``--normal-seconds``; then 5 s idle, and the server's RSS is read ("after normal load");
2. the burst: ``--clients`` threads for ``--seconds`` mixing explained photos, a 6000x6000
   JPEG with ``?explain=true``, a 39.7 MP PNG (decoded, then refused: no face), a 20000x2 strip
   and invalid bodies, while a prober asks ``/health`` every 100 ms and RSS is sampled every
   50 ms;
3. 10 s idle, then RSS again ("10 s after the burst").

Reports requests by status, RSS (start, after normal load, burst peak, 10 s after), ``/health``
p50/p99 and normal-load throughput, as a table or ``--json``. ``--src DIR`` runs the server
from another checkout's ``src`` (e.g. a ``git worktree`` of an earlier commit) with the same
options, for a before/after comparison in one run. The server is stopped if its RSS passes
``--kill-rss-gb``. Loopback only; every loop is bounded in time.

Usage (repo root): python -m benchmarks.bench_serve_hostile --model-dir models [--tta ten_crop]
       [--clients 16] [--seconds 20] [--src OTHER/src] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from PIL import Image
from skimage import data as skdata

from benchmarks import emit
from emotion.assets.model_files import DEFAULT_FACE_MODEL
from tests.serve_fixtures import free_port

ASTRONAUT_FACE = (177, 82, 272, 177)
GB = 1e9


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def payloads() -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (query, httpx request kwargs)."""
    photo = Image.fromarray(skdata.astronaut())
    crop = photo.crop(ASTRONAUT_FACE).convert("L").resize((48, 48))
    big = photo.resize((6000, 6000), Image.Resampling.BILINEAR)
    near_limit = Image.new("L", (6300, 6300), 128)  # 39.7 MP, a few KB as PNG

    def file(data: bytes) -> dict[str, Any]:
        return {"files": {"file": ("x", data)}}

    return {
        "photo": ("", file(encode(photo, "JPEG", quality=90))),
        "crop": ("", file(encode(crop, "PNG"))),
        "photo_explain": ("?explain=true", file(encode(photo, "JPEG", quality=90))),
        "jpeg_6000_explain": ("?explain=true", file(encode(big, "JPEG", quality=80))),
        "png_39mp": ("", file(encode(near_limit, "PNG"))),
        "strip_20000x2": ("", file(encode(Image.new("L", (20000, 2)), "PNG"))),
        "garbage": ("", file(random.Random(0).randbytes(50_000))),
        "bad_json": (
            "",
            {"content": b'{"image_base64": "', "headers": {"content-type": "application/json"}},
        ),
    }


HOSTILE = ("photo_explain", "jpeg_6000_explain", "png_39mp", "strip_20000x2", "garbage", "bad_json")


class Server:
    """``emotion serve`` in a subprocess, optionally from another checkout's ``src``."""

    def __init__(self, args: argparse.Namespace, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if args.src:
            env["PYTHONPATH"] = str(Path(args.src).resolve())
        cmd = [sys.executable, "-m", "emotion.tools.cli", "serve", "--port", str(self.port)]
        cmd += ["--model-dir", str(args.model_dir), "--face-model", str(args.face_model)]
        if args.tta:
            cmd += ["--tta", args.tta]
        with log.open("w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"emotion serve did not start; see {log}")

    def rss(self) -> float:
        try:
            procs = [self.ps, *self.ps.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / GB
        except psutil.NoSuchProcess:
            return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def load(
    url: str, names: tuple[str, ...], clients: int, seconds: float, bodies: dict
) -> tuple[Counter, list[float], float]:
    """``clients`` threads posting ``names`` in turn for ``seconds``: statuses, latencies, req/s."""
    statuses: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < stop:
                query, request = bodies[rng.choice(names)]
                start = time.perf_counter()
                try:
                    status: int | str = http.post(f"{url}/predict{query}", **request).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    statuses[status] += 1
                    latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, latencies, sum(statuses.values()) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = payloads()
    log = Path(args.log)
    server = Server(args, log)
    samples: list[float] = []
    health: list[float] = []
    health_failures = 0
    done = threading.Event()
    killed = False

    def sample() -> None:
        nonlocal killed
        while not done.is_set():
            rss = server.rss()
            samples.append(rss)
            if rss > args.kill_rss_gb:
                killed = True
                server.proc.kill()
                return
            time.sleep(0.05)

    def probe() -> None:
        nonlocal health_failures
        with httpx.Client(timeout=10) as http:
            while not done.is_set():
                start = time.perf_counter()
                try:
                    ok = http.get(f"{server.url}/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                health.append(time.perf_counter() - start)
                health_failures += not ok
                time.sleep(0.1)

    try:
        rss_start = server.rss()
        normal, _, normal_rate = load(
            server.url, ("photo", "crop"), args.normal_clients, args.normal_seconds, bodies
        )
        time.sleep(5)
        rss_normal = server.rss()
        watchers = [threading.Thread(target=sample), threading.Thread(target=probe)]
        for w in watchers:
            w.start()
        burst, latencies, burst_rate = load(server.url, HOSTILE, args.clients, args.seconds, bodies)
        done.set()
        for w in watchers:
            w.join()
        time.sleep(10)
        rss_after = server.rss()
        alive = server.proc.poll() is None
    finally:
        server.stop()
    return {
        "server": args.src or "this checkout",
        "tta": args.tta,
        "normal_statuses": {str(k): v for k, v in sorted(normal.items(), key=str)},
        "normal_req_per_s": round(normal_rate, 1),
        "burst_statuses": {str(k): v for k, v in sorted(burst.items(), key=str)},
        "burst_req_per_s": round(burst_rate, 1),
        "burst_p50_s": round(float(np.percentile(latencies, 50)), 3) if latencies else None,
        "burst_p99_s": round(float(np.percentile(latencies, 99)), 3) if latencies else None,
        "health_p50_s": round(float(np.percentile(health, 50)), 4) if health else None,
        "health_p99_s": round(float(np.percentile(health, 99)), 4) if health else None,
        "health_failures": health_failures,
        "rss_start_gb": round(rss_start, 3),
        "rss_after_normal_gb": round(rss_normal, 3),
        "rss_peak_gb": round(max(samples, default=float("nan")), 3),
        "rss_10s_after_burst_gb": round(rss_after, 3),
        "killed_over_rss_gb": args.kill_rss_gb if killed else None,
        "alive_after": alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--face-model", type=Path, default=DEFAULT_FACE_MODEL)
    parser.add_argument("--tta", choices=["none", "flip", "ten_crop"], default="ten_crop")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--normal-clients", type=int, default=4)
    parser.add_argument("--normal-seconds", type=float, default=10.0)
    parser.add_argument("--src", help="run the server from this src folder (PYTHONPATH)")
    parser.add_argument("--kill-rss-gb", type=float, default=12.0)
    parser.add_argument("--log", default="bench-serve-hostile.log")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    result = run(args)
    emit(result, args.json)


if __name__ == "__main__":
    main()
