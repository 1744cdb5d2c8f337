"""The HTTP API on a real exported model: predictions, face handling, limits and bad input."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient
from PIL import Image

from emotion.core.errors import DataError
from emotion.export.contract import ModelContract
from emotion.serve import ServeSettings, create_app
from emotion.serve.faces import detection_scale, detection_size
from emotion.serve.launcher import serve_in_thread
from emotion.serve.uploads import ENVELOPE_BYTES, read_image_bytes
from emotion.vision.facedetect import Face
from emotion.vision.tta import TestTimeAugmentation

from .serve_fixtures import (
    ASTRONAUT_FACE,
    CLASSES,
    FACE_MODEL,
    astronaut,
    encode,
    export_tiny_model,
    fer_crop,
)

MAX_UPLOAD_MB = 1.0
PART_HEADER = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
MAX_PIXELS = 4_000_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"))


def _client(model_dir: Path, **settings: Any) -> TestClient:
    defaults = {"face_model": FACE_MODEL, "max_upload_mb": MAX_UPLOAD_MB, "max_pixels": MAX_PIXELS}
    return TestClient(create_app(ServeSettings(model_dir=model_dir, **defaults | settings)))


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Iterator[TestClient]:
    with _client(model_dir) as c:
        yield c


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    return encode(astronaut())


def upload(client: TestClient, data: bytes, query: str = "") -> httpx.Response:
    return client.post(f"/predict{query}", files={"file": ("image", data, "image/png")})


def check_prediction(body: dict[str, Any]) -> None:
    probs = body["predictions"]
    assert list(probs) == list(CLASSES)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert body["predicted_class"] == max(probs, key=probs.__getitem__)
    assert body["confidence"] == probs[body["predicted_class"]]
    assert 0 < body["processing_time"] < 10


def ort_probabilities(
    model_dir: Path, image: Image.Image, tta: TestTimeAugmentation | None = None
) -> np.ndarray:
    """The model's probabilities for ``image``, computed here from the contract alone."""
    contract = ModelContract.load(model_dir / "model.json")
    prep = contract.preprocessing
    session = ort.InferenceSession(str(model_dir / "model.onnx"))
    views = prep.views([prep.image_to_gray(image)], tta or contract.tta)[0]
    logits = session.run([contract.output_name], {contract.input_name: views})[0]
    z = logits.astype(np.float64) / contract.temperature
    e = np.exp(z - z.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).mean(0)


# ---------------------------------------------------------------- predictions


def test_upload_finds_the_face_and_classifies_its_crop(
    client: TestClient, model_dir: Path, astronaut_png: bytes
) -> None:
    response = upload(client, astronaut_png)
    assert response.status_code == 200, response.text
    body = response.json()
    check_prediction(body)
    assert body["face_detected"] is True
    box = body["face_box"]
    assert np.allclose([box[k] for k in ("x", "y", "width", "height")], ASTRONAUT_FACE, atol=8)
    assert box["score"] > 0.5
    # exactly the contract's preprocessing of the margin-grown square crop around that box
    prep = ModelContract.load(model_dir / "model.json").preprocessing
    crop = astronaut().crop(Face(**box).crop_box(prep.face_margin, 512, 512))
    expected = ort_probabilities(model_dir, crop)
    assert np.allclose(list(body["predictions"].values()), expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["flip", "ten_crop"])
def test_a_server_started_with_tta_averages_the_contract_views(model_dir: Path, mode: str) -> None:
    """``--tta``: the views of model.json's TTA recipe, calibrated and averaged; default: none."""
    crop = fer_crop()
    with TestClient(create_app(ServeSettings(model_dir=model_dir, tta=mode))) as tta_client:
        body = upload(tta_client, encode(crop)).json()
        meta = tta_client.get("/metadata").json()
    assert (meta["tta"]["mode"], meta["contract_tta"]["mode"]) == (mode, "none")
    expected = ort_probabilities(model_dir, crop, TestTimeAugmentation(mode, 0.9))
    assert np.allclose(list(body["predictions"].values()), expected, atol=1e-5)
    assert not np.allclose(expected, ort_probabilities(model_dir, crop), atol=1e-4)


def test_base64_json_with_data_url_matches_the_upload(
    client: TestClient, astronaut_png: bytes
) -> None:
    encoded = base64.b64encode(astronaut_png).decode()
    plain = client.post("/predict", json={"image_base64": encoded}).json()
    data_url = client.post(
        "/predict", json={"image_base64": f"data:image/png;base64,{encoded}"}
    ).json()
    uploaded = upload(client, astronaut_png).json()
    for body in (plain, data_url):
        assert body["predictions"] == uploaded["predictions"]
        assert body["face_box"] == uploaded["face_box"]


def test_detect_face_false_classifies_the_whole_image(
    client: TestClient, model_dir: Path, astronaut_png: bytes
) -> None:
    body = upload(client, astronaut_png, "?detect_face=false").json()
    check_prediction(body)
    assert body["face_detected"] is False
    assert body["face_box"] is None
    assert "whole image" in body["note"]
    expected = ort_probabilities(model_dir, astronaut())
    assert np.allclose(list(body["predictions"].values()), expected, atol=1e-5)


def test_fer_style_crop_is_classified(client: TestClient, model_dir: Path) -> None:
    crop = fer_crop()
    body = upload(client, encode(crop)).json()
    check_prediction(body)
    assert body["face_detected"] is True  # the detector sees the face once upscaled
    assert body["face_box"]["width"] >= 0.8 * crop.width
    expected = ort_probabilities(model_dir, crop)  # the margin-grown box is the whole crop
    assert np.allclose(list(body["predictions"].values()), expected, atol=1e-5)


def test_small_square_without_a_face_counts_as_a_face_crop(client: TestClient) -> None:
    blank = Image.new("L", (48, 48), 128)
    body = upload(client, encode(blank)).json()
    check_prediction(body)
    assert body["face_detected"] is False
    assert body["face_box"] is None
    assert "face crop" in body["note"]


def test_detection_upscale_rule() -> None:
    assert detection_scale(48, 48) == pytest.approx(128 / 48)
    assert detection_scale(512, 512) == 1.0
    assert detection_scale(1000, 40) == pytest.approx(2048 / 1000)  # the long side caps it
    assert detection_scale(4000, 20) == pytest.approx(2048 / 4000)  # downscaled to 2048
    assert detection_size(32767, 2) == (2048, 1)  # OpenCV in mediapipe fails at 32,767 px


def test_exif_orientation_is_applied_before_detection(client: TestClient) -> None:
    stored = astronaut().transpose(Image.Transpose.ROTATE_90)  # pixels lie on their side
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    body = upload(client, encode(stored, "JPEG", exif=exif, quality=95)).json()
    box = body["face_box"]
    assert np.allclose([box[k] for k in ("x", "y", "width", "height")], ASTRONAUT_FACE, atol=10)


def test_no_face_is_422_by_default_and_whole_frame_with_fallback(model_dir: Path) -> None:
    blank = encode(Image.new("RGB", (320, 240), (90, 120, 150)))
    with _client(model_dir) as strict:
        response = upload(strict, blank)
        assert response.status_code == 422
        assert "no face found" in response.json()["detail"]
        assert "detect_face=false" in response.json()["detail"]
        assert upload(strict, blank, "?detect_face=false").status_code == 200
    with _client(model_dir, face_fallback=True) as lenient:
        body = upload(lenient, blank).json()
        check_prediction(body)
        assert body["face_detected"] is False
        assert body["face_box"] is None
        assert "no face detected" in body["note"]


def test_int8_variant_is_served(model_dir: Path, astronaut_png: bytes) -> None:
    with _client(model_dir, variant="int8") as int8:
        meta = int8.get("/metadata").json()
        assert meta["variant"] == "int8"
        assert meta["model_file"] == "model.int8.onnx"
        served = (model_dir / "model.int8.onnx").read_bytes()
        assert meta["sha256"] == hashlib.sha256(served).hexdigest()
        check_prediction(upload(int8, astronaut_png).json())


def test_health_and_metadata(client: TestClient, model_dir: Path) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "variant": "fp32",
        "face_detection": True,
    }
    meta = client.get("/metadata").json()
    contract = json.loads((model_dir / "model.json").read_text())
    assert meta["labels"] == list(CLASSES)
    assert meta["sha256"] == contract["files"]["fp32"]["sha256"]
    assert meta["sha256"] == hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest()
    assert meta["preprocessing"] == contract["preprocessing"]
    assert meta["opset"] == 17
    assert meta["source"]["model_name"] == "emotion_cnn_s"
    assert "CPUExecutionProvider" in meta["providers"]
    assert meta["limits"] == {
        "max_upload_bytes": 2**20,
        "max_pixels": MAX_PIXELS,
        "max_side": ServeSettings.max_side,
        "max_in_flight": ServeSettings.max_in_flight,
        "max_faces": ServeSettings.max_faces,
    }


def test_web_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="file"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert f'"{asset}"' in page.text
        assert client.get(asset).status_code == 200
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing from a CDN
    assert 'rel="icon" href="/app/icon.svg"' in page.text
    icon = client.get("/favicon.ico", follow_redirects=False)
    assert icon.status_code == 307
    assert icon.headers["location"] == "/app/icon.svg"


def test_openapi_documents_both_body_encodings_and_errors(client: TestClient) -> None:
    predict = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"200", "400", "413", "415", "422"} <= set(predict["responses"])


def test_model_files_out_of_sync_with_the_contract_fail_at_start(
    model_dir: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    contract = json.loads((copy / "model.json").read_text())
    contract["files"]["fp32"]["sha256"] = "0" * 64
    (copy / "model.json").write_text(json.dumps(contract))
    with pytest.raises(DataError, match="SHA-256"):
        create_app(ServeSettings(model_dir=copy, face_model=FACE_MODEL))
    del contract["files"]["int8"]
    (copy / "model.json").write_text(json.dumps(contract))
    with pytest.raises(DataError, match="no 'int8' model"):
        create_app(ServeSettings(model_dir=copy, variant="int8", face_model=FACE_MODEL))


# ---------------------------------------------------------------- bad input


def _frames(fmt: str) -> bytes:
    a, b = astronaut().resize((64, 64)), fer_crop(64).convert("RGB")
    return encode(a, fmt, save_all=True, append_images=[b])


def _file(data: bytes) -> dict[str, Any]:
    return {"files": {"file": ("image", data, "application/octet-stream")}}


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _oversize() -> bytes:
    return encode(astronaut()) + bytes(2**20)


def _streamed(data: bytes, chunk: int = 65536) -> dict[str, Any]:
    """A multipart body sent in chunks without Content-Length."""
    body = PART_HEADER + data + b"\r\n--xyz--\r\n"
    return {
        "content": iter([body[i : i + chunk] for i in range(0, len(body), chunk)]),
        "headers": {"content-type": "multipart/form-data; boundary=xyz"},
    }


AS_JSON = {"content-type": "application/json"}
#: case -> (request keyword arguments, built lazily; status; text the detail must contain)
BAD_INPUTS: dict[str, tuple[Callable[[], dict[str, Any]], int, str]] = {
    "empty body": (lambda: {"content": b""}, 422, "body is empty"),
    "empty file": (lambda: _file(b""), 422, "image is empty"),
    "empty json": (lambda: {"content": b"", "headers": AS_JSON}, 422, "body is empty"),
    "non-image bytes": (lambda: _file(b"%PDF-1.7 not an image"), 415, "not a supported image"),
    "unsupported format": (
        lambda: _file(encode(astronaut(), "PCX")),
        415,
        "not a supported image",
    ),
    "truncated png": (lambda: _file(_half(encode(astronaut()))), 422, "truncated"),
    "truncated jpeg": (lambda: _file(_half(encode(astronaut(), "JPEG"))), 422, "truncated"),
    "16-bit": (
        lambda: _file(encode(Image.fromarray(np.full((64, 64), 40_000, np.uint16)))),
        415,
        "bit depth",
    ),
    "animated gif": (lambda: _file(_frames("GIF")), 415, "animated"),
    "animated png": (lambda: _file(_frames("PNG")), 415, "animated"),
    "multi-page tiff": (lambda: _file(_frames("TIFF")), 415, "2 frames"),
    "too many pixels": (  # 4.2 Mpx > MAX_PIXELS in ~5 kB of PNG
        lambda: _file(encode(Image.new("L", (2100, 2000)))),
        413,
        "over the limit",
    ),
    "decompression bomb": (  # 180 Mpx: over Pillow's own limit (2 x 89.5 Mpx) too
        lambda: _file(encode(Image.new("1", (20_000, 9_000)))),
        413,
        "too many pixels",
    ),
    "oversize upload": (lambda: _file(_oversize()), 413, "1 MiB limit"),
    "oversize streamed": (lambda: _streamed(_oversize()), 413, "1 MiB limit"),
    "oversize base64": (
        lambda: {"json": {"image_base64": base64.b64encode(_oversize()).decode()}},
        413,
        "1 MiB limit",
    ),
    "invalid base64": (lambda: {"json": {"image_base64": "not base64!"}}, 422, "not valid base64"),
    "base64 not a string": (lambda: {"json": {"image_base64": 42}}, 422, "base64 string"),
    "invalid json": (lambda: {"content": b"{oops", "headers": AS_JSON}, 400, "not valid JSON"),
    "json without field": (lambda: {"json": {"image": "abc"}}, 422, "no 'image_base64' field"),
    "multipart without file": (
        lambda: {"files": {"photo": ("image", encode(fer_crop()))}},
        422,
        "no 'file' part",
    ),
    "file as a text field": (
        lambda: {"data": {"file": "x"}, "files": {"y": ("y", b"")}},
        422,
        "must be a file part",
    ),
    "malformed multipart": (
        lambda: {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
        400,
        "malformed multipart",
    ),
    "wrong content type": (
        lambda: {"content": encode(fer_crop()), "headers": {"content-type": "image/png"}},
        415,
        "Content-Type 'image/png' is not supported",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_json_4xx_and_the_server_keeps_serving(
    client: TestClient, case: str
) -> None:
    request, status, message = BAD_INPUTS[case]
    response = client.post("/predict", **request())
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert message in detail
    assert client.get("/health").json()["status"] == "ok"


def test_invalid_query_parameter_is_a_string_detail(
    client: TestClient, astronaut_png: bytes
) -> None:
    response = upload(client, astronaut_png, "?detect_face=maybe")
    assert response.status_code == 422
    assert "detect_face" in response.json()["detail"]


@pytest.mark.parametrize(
    ("mode", "save"),
    [("CMYK", {}), ("P", {"transparency": 0}), ("RGBA", {}), ("LA", {}), ("1", {})],
)
def test_convertible_modes_are_accepted(
    client: TestClient, mode: str, save: dict[str, Any]
) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    data = encode(astronaut().convert(mode), fmt, **save)
    assert Image.open(io.BytesIO(data)).mode == mode
    response = upload(client, data, "?detect_face=false")  # a dithered 1-bit face is undetectable
    assert response.status_code == 200, response.text
    check_prediction(response.json())


def test_transparency_is_flattened_onto_white(client: TestClient) -> None:
    clear = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    white = Image.new("RGB", (48, 48), "white")
    query = "?detect_face=false"
    assert (
        upload(client, encode(clear), query).json()["predictions"]
        == upload(client, encode(white), query).json()["predictions"]
    )


@pytest.mark.parametrize(
    ("content_type", "preamble"),
    [
        ("multipart/form-data; boundary=xyz", PART_HEADER),
        ("application/json", b'{"image_base64": "'),
    ],
    ids=["multipart", "json"],
)
def test_an_endless_body_is_cut_off_at_the_limit(content_type: str, preamble: bytes) -> None:
    chunk, received = 65536, 0

    async def receive() -> dict[str, Any]:  # the ASGI server's side: body chunks, 64 MiB max
        nonlocal received
        received += chunk
        body = preamble if received == chunk else b"A" * chunk
        return {"type": "http.request", "body": body, "more_body": received < 2**26}

    headers = [(b"content-type", content_type.encode())]
    scope = {"type": "http", "method": "POST", "headers": headers}
    with pytest.raises(HTTPException) as caught:
        asyncio.run(read_image_bytes(Request(scope, receive), max_bytes=2**20, timeout=30))
    assert caught.value.status_code == 413
    assert received <= 2**20 * 4 / 3 + ENVELOPE_BYTES + 2 * chunk


# ---------------------------------------------------------------- concurrency


def test_concurrent_clients_over_real_http(model_dir: Path, astronaut_png: bytes) -> None:
    images = {"photo": astronaut_png, "crop": encode(fer_crop())}
    results: list[tuple[str, int, dict[str, float] | None]] = []
    errors: list[BaseException] = []
    app = create_app(ServeSettings(model_dir=model_dir, face_model=FACE_MODEL))
    with serve_in_thread(app) as url:
        stop = time.monotonic() + 3.0

        def worker(k: int) -> None:
            try:
                with httpx.Client(base_url=url, timeout=30) as http:
                    while time.monotonic() < stop:
                        name = ("photo", "crop")[k % 2]
                        r = http.post("/predict", files={"file": ("f", images[name])})
                        results.append((name, r.status_code, r.json().get("predictions")))
                        k += 1
            except BaseException as exc:  # surfaced below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert httpx.get(f"{url}/health").status_code == 200
    assert not errors
    assert len(results) >= 8
    assert {status for _, status, _ in results} == {200}
    for name in images:  # same image, same answer, whichever thread served it
        answers = {json.dumps(p, sort_keys=True) for n, _, p in results if n == name}
        assert len(answers) == 1
