"""Serving operations over HTTP: explained predictions, the access log, Prometheus metrics,
several worker processes, HTTPS and the on-device client's static bundle."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from emotion.core.errors import ConfigError
from emotion.serve import ServeSettings, create_app
from emotion.serve.launcher import check_tls
from emotion.serve.saliency import OcclusionSaliency

from .serve_fixtures import FACE_MODEL, astronaut, emotion_serve, encode, export_tiny_model

CLIENT = Path(__file__).resolve().parents[1] / "client"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Iterator[TestClient]:
    settings = ServeSettings(model_dir=model_dir, face_model=FACE_MODEL, client_dir=CLIENT)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def predict(client: TestClient, png: bytes, query: str = "") -> httpx.Response:
    return client.post(f"/predict{query}", files={"file": ("face.png", png, "image/png")})


def samples(client: TestClient) -> dict[tuple[str, frozenset], float]:
    """Every sample of ``/metrics``: (name, labels) -> value."""
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(values: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in values.items() if n == name and want <= ls)


def test_occlusion_grid_covers_every_pixel_and_reaches_the_edges() -> None:
    saliency = OcclusionSaliency(patch=8, stride=5)
    positions = saliency.positions(48)
    covered = np.zeros((48, 48), bool)
    for top, left in positions:
        covered[top : top + 8, left : left + 8] = True
    assert covered.all()
    assert max(top for top, _ in positions) == 40


def test_occlusion_saliency_finds_the_region_a_model_depends_on() -> None:
    """A 'model' whose probability is the brightness of one 8x8 region: the map peaks there."""
    gray = np.full((48, 48), 200, np.uint8)

    def probabilities(grays: np.ndarray) -> np.ndarray:
        p = grays[:, 30:38, 10:18].mean(axis=(1, 2)) / 255.0
        return np.stack([p, 1 - p], axis=1)

    values = OcclusionSaliency().saliency(gray, 0, probabilities(gray[None])[0, 0], probabilities)
    top, left = np.unravel_index(values.argmax(), values.shape)
    assert 30 <= top < 38
    assert 10 <= left < 18
    assert values[:20].max() == 0.0  # the rows above the region do not matter


def test_explanations_go_through_the_model_in_bounded_batches() -> None:
    """A ten-crop model sees batch x 10 views per call, never all 1,210 at once."""
    sizes: list[int] = []

    def probabilities(grays: np.ndarray) -> np.ndarray:
        sizes.append(len(grays))
        return np.full((len(grays), 6), 1 / 6)

    saliency = OcclusionSaliency(batch=16)
    saliency.saliency(np.zeros((48, 48), np.uint8), 0, 0.5, probabilities)
    assert max(sizes) == 16
    assert sum(sizes) == len(saliency.positions(48))


def test_explain_returns_the_saliency_png_aligned_to_the_classified_crop(
    client: TestClient,
) -> None:
    png = encode(astronaut())
    plain = predict(client, png).json()
    body = predict(client, png, "?explain=true").json()
    assert body["predictions"] == plain["predictions"]
    saliency = body["saliency"]
    face, margin = body["face_box"], 0.25
    side = round(max(face["width"], face["height"]) * (1 + 2 * margin))
    assert (saliency["box"]["width"], saliency["box"]["height"]) == (side, side)
    image = Image.open(io.BytesIO(base64.b64decode(saliency["png"])))
    assert image.mode == "L"
    assert image.size == (saliency["size"], saliency["size"])
    assert saliency["evaluations"] == len(OcclusionSaliency().positions(saliency["size"])) + 1
    assert plain.get("saliency") is None


def test_metrics_count_requests_latency_predictions_and_the_model(client: TestClient) -> None:
    before = samples(client)
    png = encode(astronaut())
    for _ in range(2):
        assert predict(client, png).status_code == 200
    assert predict(client, b"not an image").status_code == 415
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    after = samples(client)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("emotion_requests_total", route="/predict", status="200") == 2
    assert delta("emotion_requests_total", route="/predict", status="415") == 1
    assert delta("emotion_request_duration_seconds_count", route="/predict") == 3
    assert delta("emotion_requests_total", route="/static/{path}", status="200") == 1
    assert delta("emotion_requests_total", route="unmatched", status="404") == 1
    assert delta("emotion_predictions_total") == 2
    assert delta("emotion_faces_total", found="true") == 2
    assert total(after, "emotion_model_info", variant="fp32", tta="none") == 1
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_one_json_access_line_per_request_and_no_image_content(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    png = encode(astronaut())
    with caplog.at_level(logging.INFO, logger="emotion.serve.access"):
        predict(client, png)
        client.get("/health")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
    assert [line["path"] for line in lines] == ["/predict", "/health"]
    first = lines[0]
    assert set(first) == {
        "method",
        "path",
        "status",
        "latency_ms",
        "face_found",
        "predicted_class",
        "faces",
    }
    assert first["method"] == "POST"
    assert first["status"] == 200
    assert first["face_found"] is True
    text = caplog.text
    assert "face.png" not in text
    assert base64.b64encode(png[:64]).decode()[:40] not in text


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with httpx.Client() as http:  # a new connection: any worker may answer
        text = http.get(f"{url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.slow
def test_workers_are_processes_whose_metrics_every_scrape_sums(model_dir: Path) -> None:
    png = encode(astronaut())
    base = ["--model-dir", str(model_dir), "--face-model", str(FACE_MODEL)]
    with emotion_serve(*base, "--workers", "2") as (url, _):
        for _ in range(12):
            with httpx.Client() as http:
                response = http.post(f"{url}/predict", files={"file": ("f.png", png)})
                assert response.status_code == 200
        for _ in range(6):
            values = scrape(url)
            workers = {
                dict(labels)["pid"] for name, labels in values if name == "emotion_model_info"
            }
            assert len(workers) == 2
            assert total(values, "emotion_predictions_total") == 12


@pytest.mark.slow
def test_https_with_a_locally_made_certificate(model_dir: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    base = ["--model-dir", str(model_dir), "--face-model", str(FACE_MODEL)]
    with emotion_serve(*base, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as (url, _):
        assert url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(f"{url}/app/", verify=trust).status_code == 200


def test_tls_options_are_checked_before_serving(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both --ssl-certfile and --ssl-keyfile"):
        check_tls(tmp_path / "cert.pem", None)
    with pytest.raises(ConfigError, match="not found"):
        check_tls(tmp_path / "cert.pem", tmp_path / "key.pem")


def test_the_client_bundle_holds_every_precached_file(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "emotion.tools.cli", "client", "bundle", str(out),
         "--model-dir", str(model_dir), "--face-model", str(FACE_MODEL)],
        capture_output=True, text=True, env={**os.environ}, cwd=CLIENT.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listing = json.loads((out / "precache.json").read_text())
    for url in listing["files"]:
        assert (out / (url if url != "./" else "index.html")).is_file(), url
    assert (out / "model/model.onnx").read_bytes() == (model_dir / "model.onnx").read_bytes()


def test_a_client_without_its_npm_packages_says_how_to_install_them(
    model_dir: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "client"
    bare.mkdir()
    settings = ServeSettings(model_dir=model_dir, face_model=FACE_MODEL, client_dir=bare)
    with TestClient(create_app(settings)) as test_client:
        response = test_client.get("/app/")
        assert response.status_code == 503
        assert "make setup" in response.json()["detail"]
        assert test_client.get("/health").status_code == 200  # the API serves regardless
