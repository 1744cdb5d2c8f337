"""Hostile input against a running ``emotion serve``: it answers 4xx or 503, never dies.

Every case here once took the server down, held it, grew it or answered 500; each test drives
the real server process over loopback HTTP (raw sockets where a client must misbehave).
"""

from __future__ import annotations

import io
import json
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from emotion.serve.memory import HeapTrimmer
from emotion.serve.observability import METHODS

from .serve_fixtures import (
    FACE_MODEL,
    REPO,
    astronaut,
    emotion_serve,
    encode,
    export_tiny_model,
    fer_crop,
)

HEADER_TIMEOUT, BODY_TIMEOUT, KEEPALIVE_TIMEOUT = 1.0, 2.0, 1.0
MAX_IN_FLIGHT = 2


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def server(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    args = [
        "--model-dir", str(model_dir), "--face-model", str(FACE_MODEL),
        "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
        "--keepalive-timeout", str(KEEPALIVE_TIMEOUT), "--max-in-flight", str(MAX_IN_FLIGHT),
    ]  # fmt: skip
    with emotion_serve(*args, log=log) as (url, proc):
        yield url, proc, log


def alive(server: tuple[str, subprocess.Popen, Path]) -> None:
    url, proc, log = server
    assert proc.poll() is None, log.read_text()[-3000:]
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200


def post(url: str, data: bytes, query: str = "") -> httpx.Response:
    return httpx.post(f"{url}/predict{query}", files={"file": ("x", data)}, timeout=30)


def raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------ 1. image sides


@pytest.mark.parametrize("size", [(32767, 2), (1, 60000)])
def test_an_image_with_a_side_over_the_limit_is_413(server, size: tuple[int, int]) -> None:
    response = post(server[0], encode(Image.new("L", size)))
    assert response.status_code == 413
    assert "a side over the limit of 16,384 px" in response.json()["detail"]
    alive(server)


def test_a_long_strip_under_the_limits_reaches_the_detector_at_a_bounded_size(server) -> None:
    response = post(server[0], encode(Image.new("L", (16000, 2))))
    assert response.status_code == 422
    assert "no face found" in response.json()["detail"]
    alive(server)


def test_a_big_jpeg_is_classified_with_its_box_in_the_uploads_pixels(server) -> None:
    photo = astronaut().resize((4096, 4096))
    response = post(server[0], encode(photo, "JPEG", quality=90))
    assert response.status_code == 200
    box = response.json()["face_box"]
    assert box["x"] == pytest.approx(177 * 8, abs=40)  # the 512 px photo's face, 8x larger
    assert box["width"] == pytest.approx(95 * 8, abs=60)


# ------------------------------------------------------------ 2. admission control


def test_beyond_max_in_flight_requests_get_503_with_retry_after_at_once(server) -> None:
    url = server[0]
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 100000\r\n\r\n--b\r\n"
    )
    holders = [raw(url) for _ in range(MAX_IN_FLIGHT)]
    for sock in holders:  # each holds a slot while its body trickles (until the body timeout)
        sock.sendall(head)
    time.sleep(0.3)
    start = time.monotonic()
    refused = post(url, encode(fer_crop()))
    assert time.monotonic() - start < 1.0
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert f"limit of {MAX_IN_FLIGHT} predictions in flight" in refused.json()["detail"]
    for sock in holders:
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"did not arrive within 2 s" in answer
        sock.close()
    assert post(url, encode(fer_crop())).status_code == 200


# ------------------------------------------------------------ 3. bounded /metrics


def test_invented_methods_do_not_grow_metrics(server) -> None:
    url = server[0]
    before = len(httpx.get(f"{url}/metrics").content)
    for i in range(60):
        method = f"M{i}" if i % 2 else "X" * 4000 + str(i)
        with raw(url) as sock:
            sock.sendall(
                f"{method} /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            assert read_all(sock).startswith(b"HTTP/1.1 405")
    text = httpx.get(f"{url}/metrics").text
    methods = {
        s.labels["method"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "method" in s.labels
    }
    assert methods <= METHODS | {"OTHER"}
    assert "OTHER" in methods
    assert len(text) < before + 2000
    alive(server)


# ------------------------------------------------------------ 4. timeouts


@pytest.mark.parametrize("sent", [b"", b"GET /health HTTP/1.1\r\nHost: x\r\n"])
def test_a_connection_that_never_completes_its_headers_is_closed(server, sent: bytes) -> None:
    with raw(server[0]) as sock:
        start = time.monotonic()
        sock.sendall(sent)
        answer = read_all(sock)
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert HEADER_TIMEOUT * 0.9 < elapsed < HEADER_TIMEOUT + 2


def test_a_slow_body_is_cut_off_with_408(server) -> None:
    with raw(server[0]) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        start = time.monotonic()
        for _ in range(10):  # a byte a second, for longer than the body timeout
            time.sleep(0.5)
            try:
                sock.sendall(b" ")
            except OSError:
                break
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - start < BODY_TIMEOUT + 3


def test_an_idle_keep_alive_connection_is_closed(server) -> None:
    with raw(server[0]) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        while not first.endswith(b"}"):  # headers and body may come in two reads
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server
        assert time.monotonic() - start < KEEPALIVE_TIMEOUT + 2


def test_a_client_gone_mid_upload_is_logged_as_499_without_a_traceback(server) -> None:
    url, _, log = server
    with raw(url) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 50000\r\n\r\n--b\r\nContent-Disposition: form-data;"
            b' name="file"; filename="a"\r\n\r\n' + b"x" * 1000
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while '"status": 499' not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert '"status": 499' in text
    assert "Traceback" not in text
    alive(server)


# ------------------------------------------------------------ 7. 4xx, never 500


def test_deep_json_and_huge_integers_are_400(server) -> None:
    url = server[0]
    deep = "[" * 100_000 + "]" * 100_000
    for body in (deep, '{"image_base64": ' + "9" * 5000 + "}"):
        response = httpx.post(
            f"{url}/predict", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "JSON" in response.json()["detail"]
    alive(server)


def test_head_health_answers_for_load_balancers(server) -> None:
    response = httpx.head(f"{server[0]}/health")
    assert response.status_code == 200


def test_an_mpo_photo_is_read_as_its_first_frame(server) -> None:
    photo, second = astronaut(), astronaut().transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    photo.save(buf, "MPO", save_all=True, append_images=[second])
    mpo = post(server[0], buf.getvalue())
    assert mpo.status_code == 200, mpo.text
    jpeg = post(server[0], encode(photo, "JPEG"))
    assert mpo.json()["predictions"] == jpeg.json()["predictions"]


def mutations(seed: int, count: int) -> Iterator[tuple[str, dict]]:
    """(description, httpx request kwargs): mutated real images and malformed bodies."""
    rng = random.Random(seed)
    photo = astronaut().resize((160, 160))
    seeds = [
        encode(photo, fmt, **opts)
        for fmt, opts in (
            ("JPEG", {"quality": 80, "exif": Image.Exif()}),
            ("PNG", {}),
            ("WEBP", {}),
            ("GIF", {}),
            ("BMP", {}),
            ("TIFF", {}),
        )
    ] + [encode(fer_crop(), "PNG"), encode(fer_crop(), "JPEG")]
    for i in range(count):
        data = bytearray(rng.choice(seeds))
        kind = rng.randrange(10)
        if kind < 6:  # flip bytes, most often in the header
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(min(len(data), 200) if rng.random() < 0.7 else len(data))
                data[pos] = rng.randrange(256)
        elif kind == 6:
            data = data[: rng.randrange(1, len(data))]
        elif kind == 7:
            pos = rng.randrange(len(data))
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        if kind == 8:
            body = rng.choice(
                [b"{", b"[]", b'{"image_base64": 5}', b'{"image_base64": "!!"}', b"\xff" * 9]
            )
            yield f"{i}: json", {"content": body, "headers": {"content-type": "application/json"}}
        elif kind == 9:
            headers = {"content-type": rng.choice(["multipart/form-data", "text/plain", "a/b;x"])}
            yield f"{i}: malformed", {"content": bytes(data[:300]), "headers": headers}
        else:
            yield f"{i}: image", {"files": {"file": ("x", bytes(data))}}


def test_fuzzed_images_and_requests_never_get_a_5xx(server) -> None:
    url = server[0]
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as http:
        for n, (what, request) in enumerate(mutations(seed=29, count=2000)):
            response = http.post(f"{url}/predict", **request)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, f"{what}: {response.text}"
            assert isinstance(response.json().get("detail", ""), str)
            if n % 200 == 0:
                assert http.get(f"{url}/health").status_code == 200
    assert statuses.get(200, 0) > 50
    assert sum(v for k, v in statuses.items() if k >= 400) > 500
    alive(server)


# ------------------------------------------------------------ 5. and 7.: refused before serving


def run_serve(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "emotion.tools.cli", "serve", "--port", "0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def corrupt_model(model_dir: Path, tmp_path: Path) -> Path:
    """A model folder whose model.onnx is garbage that model.json's digest vouches for."""
    import hashlib
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    garbage = b"\x08\x07not an onnx model" * 50
    (broken / "model.onnx").write_bytes(garbage)
    contract = json.loads((broken / "model.json").read_text())
    contract["files"]["fp32"]["sha256"] = hashlib.sha256(garbage).hexdigest()
    (broken / "model.json").write_text(json.dumps(contract))
    return broken


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_corrupt_model_ends_the_command_with_one_message(
    corrupt_model: Path, workers: str
) -> None:
    start = time.monotonic()
    done = run_serve("--model-dir", str(corrupt_model), "--face-model", str(FACE_MODEL),
                     "--workers", workers)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert re.search(r"model\.onnx: ONNX Runtime cannot load it", done.stderr)
    assert "Traceback" not in done.stderr
    assert time.monotonic() - start < 60


def test_bad_pem_files_are_named(model_dir: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    key.write_text("nothing\n")
    done = run_serve("--model-dir", str(model_dir), "--ssl-certfile", str(cert),
                     "--ssl-keyfile", str(key))  # fmt: skip
    assert done.returncode == 2
    assert "not a PEM certificate and its private key" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------ 2. memory under a hostile burst


@pytest.mark.slow
def test_a_hostile_burst_keeps_memory_bounded_and_health_answering(
    model_dir: Path, tmp_path: Path
) -> None:
    """16 clients for 20 s of explained, huge, near-limit and invalid requests (ten-crop)."""
    out = tmp_path / "hostile.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_serve_hostile", "--model-dir", str(model_dir),
           "--face-model", str(FACE_MODEL), "--tta", "ten_crop", "--clients", "16",
           "--seconds", "20", "--log", str(tmp_path / "serve.log"), "--json", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=240, capture_output=True, cwd=REPO)
    result = json.loads(out.read_text())
    statuses = result["burst_statuses"]
    assert all(s.isdigit() and (int(s) < 500 or s == "503") for s in statuses), statuses
    assert statuses.get("200", 0) > 0
    assert statuses.get("413", 0) > 0
    assert result["alive_after"]
    assert result["health_failures"] == 0
    assert result["health_p99_s"] < 1.0
    assert result["rss_peak_gb"] <= 1.5
    assert result["rss_10s_after_burst_gb"] <= 1.25 * result["rss_after_normal_gb"]
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_heaps_are_trimmed_when_the_last_request_after_costly_ones_ends() -> None:
    trimmer = HeapTrimmer(interval=1.0)
    plain = {"explained": False, "large_decodes": 0}
    assert not trimmer.due(**plain, in_flight=0, now=10.0)  # nothing costly happened
    assert not trimmer.due(explained=True, large_decodes=0, in_flight=1, now=10.1)  # others run
    assert trimmer.due(**plain, in_flight=0, now=10.2)  # the last one after an explanation
    assert not trimmer.due(explained=True, large_decodes=0, in_flight=0, now=10.5)  # too soon
    assert trimmer.due(**plain, in_flight=0, now=11.6)  # still owed, once the interval passed
    assert trimmer.due(explained=False, large_decodes=3, in_flight=0, now=13.0)  # large decodes
    assert not trimmer.due(explained=False, large_decodes=3, in_flight=0, now=15.0)  # no new ones
