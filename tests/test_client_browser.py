"""The on-device client (/app/) in a real browser: Debian's chromium, Playwright, uvicorn.

The page runs the exported ONNX model with onnxruntime-web (WebAssembly) and BlazeFace with
mediapipe Tasks for Web, both from client/node_modules (``make setup``). Checked against the
server on the same pixels: uploads, chromium's fake camera playing a photo, offline use through
the service worker, the server fallback without WebAssembly and the explain overlay.
Chromium missing: see :mod:`tests.browser_fixtures` (skip locally, fail in CI).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from emotion.serve import ServeSettings, create_app
from emotion.serve.launcher import serve_in_thread
from emotion.serve.settings import RELEASED_MODEL

from .browser_fixtures import check_saliency_overlay, launch, require_chromium, write_y4m
from .serve_fixtures import FACE_MODEL, astronaut, encode, export_tiny_model, fer_crop

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "client"
#: In-browser vs server probabilities on the same pixels: the face box is the same and the model
#: inputs are bit-identical (tests/test_client_preprocessing.py); only onnxruntime-web's
#: WebAssembly kernels and the native CPU kernels differ (summation order: float32 ulps of the
#: logits). Measured: at most 1.5e-7 on the three images below; the bound leaves room for the
#: larger logits of a trained model.
PROBABILITY_ATOL = 2e-6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"))


def settings(model_dir: Path) -> ServeSettings:
    return ServeSettings(model_dir=model_dir, face_model=FACE_MODEL, client_dir=CLIENT)


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    with serve_in_thread(create_app(settings(model_dir))) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    require_chromium()
    video = write_y4m(astronaut(), tmp_path_factory.mktemp("camera") / "astronaut.y4m")
    with sync_playwright() as pw:
        browser = launch(pw, camera_video=video)
        yield browser
        browser.close()


def open_client(browser: Browser, url: str, **context: Any) -> Page:
    page = browser.new_context(**context).new_page()
    page.goto(f"{url}/app/")
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=60_000)
    return page


def choose(page: Page, name: str, data: bytes) -> dict[str, Any]:
    """Upload ``data`` and wait for the page's result."""
    before = int(page.evaluate("Number(document.body.dataset.analysed ?? 0)"))
    page.set_input_files("#file", files=[{"name": name, "mimeType": "image/png", "buffer": data}])
    page.wait_for_function(f"Number(document.body.dataset.analysed ?? 0) > {before}")
    return page.evaluate("window.emotion.state.last.result")


def server_predict(url: str, png: bytes, query: str = "") -> dict[str, Any]:
    response = httpx.post(f"{url}/predict{query}", files={"file": ("f.png", png)}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def assert_same_prediction(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """The same face box and score (mediapipe's WebAssembly and Python builds of BlazeFace on the
    same pixels), the same probabilities within ``PROBABILITY_ATOL``."""
    assert got["face_detected"] == expected["face_detected"]
    assert got["face_box"] == expected["face_box"]
    labels = list(expected["predictions"])
    np.testing.assert_allclose(
        [got["predictions"][c] for c in labels],
        [expected["predictions"][c] for c in labels],
        atol=PROBABILITY_ATOL,
        rtol=0,
    )


def test_uploads_are_classified_on_the_device_as_the_server_does(
    browser: Browser, server: str
) -> None:
    page = open_client(browser, server)
    assert page.evaluate("document.body.dataset.ready") == "device"
    assert page.evaluate("crossOriginIsolated")  # COOP + COEP: WebAssembly threads allowed
    expect(page.locator("#status")).to_contain_text("Model ready on this device: fp32, ")
    expect(page.locator("#status")).to_contain_text("no test-time augmentation")
    assert "(s)" not in page.inner_text("#status")
    expect(page.locator("#model-info")).to_contain_text("not meant for photos")
    for name, image in (("photo.png", astronaut()), ("crop.png", fer_crop())):
        png = encode(image)
        result = choose(page, name, png)
        expected = server_predict(server, png)
        assert_same_prediction(result, expected)
        if expected["face_box"] is not None:
            box = page.get_attribute("#view", "data-face-box")
            assert box is not None
    page.context.close()


def two_faces() -> bytes:
    """Two copies of the astronaut side by side: a 1024 x 512 photo with two faces."""
    from PIL import Image

    pair = Image.new("RGB", (1024, 512), "white")
    pair.paste(astronaut(), (0, 0))
    pair.paste(astronaut().transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    return encode(pair)


def test_the_status_line_names_the_engine_in_use(browser: Browser, server: str) -> None:
    page = open_client(browser, server)
    page.check('input[value="server"]')
    expect(page.locator("#status")).to_have_text(f"Running on the server ({server}/predict).")
    page.check('input[value="device"]')
    expect(page.locator("#status")).to_contain_text("Model ready on this device")
    page.context.close()


def test_every_face_on_the_device_matches_the_servers_all_faces(
    browser: Browser, server: str
) -> None:
    page = open_client(browser, server)
    page.check("#all-faces")
    png = two_faces()
    result = choose(page, "pair.png", png)
    expected = server_predict(server, png, "?all_faces=true")
    assert len(expected["faces"]) >= 2
    assert len(result["faces"]) == len(expected["faces"])
    for got, want in zip(result["faces"], expected["faces"], strict=True):
        assert_same_prediction({**got, "face_detected": True}, {**want, "face_detected": True})
    assert page.get_attribute("#view", "data-faces") == str(len(expected["faces"]))
    page.uncheck("#all-faces")
    photo = encode(astronaut())
    single = choose(page, "photo.png", photo)
    assert single["faces"] is None
    assert_same_prediction(single, server_predict(server, photo))
    page.context.close()


def test_the_camera_loop_runs_on_the_device_and_matches_the_server_frame_by_frame(
    browser: Browser, server: str
) -> None:
    page = open_client(browser, server)
    page.click("#camera")
    page.wait_for_function("Number(document.body.dataset.analysed ?? 0) >= 8", timeout=60_000)
    assert page.locator("#video").bounding_box() is None  # one view: the annotated frame
    snapshot = page.evaluate("window.emotion.snapshot()")
    png = base64.b64decode(snapshot["png"])
    assert_same_prediction(snapshot["result"], server_predict(server, png))
    rate = float(page.get_attribute("#rate", "data-rate") or 0)
    assert rate > 0
    expect(page.locator("#rate")).to_contain_text("frames/s")
    page.click("#camera")
    page.context.close()


def test_the_installed_client_works_offline(browser: Browser, model_dir: Path) -> None:
    """Service worker: once loaded, the page, packages and model open with the server gone."""
    png = encode(astronaut())
    with serve_in_thread(create_app(settings(model_dir))) as url:
        page = open_client(browser, url)
        page.wait_for_function(
            "navigator.serviceWorker.ready.then(() => navigator.serviceWorker.controller !== null)",
            timeout=60_000,
        )
        page.reload()
        page.wait_for_function("document.body.dataset.ready !== undefined", timeout=60_000)
        online = choose(page, "photo.png", png)
    page.reload()  # the server has stopped: everything now comes from the cache
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=60_000)
    assert page.evaluate("document.body.dataset.ready") == "device"
    offline = choose(page, "photo.png", png)
    assert offline["predictions"] == online["predictions"]
    page.check("#explain")  # explanations come from the server, which is gone
    failed = choose(page, "photo.png", png)
    assert f"the server at {url}/ did not answer" in failed["error"]
    expect(page.locator("#error")).to_contain_text("did not answer")
    assert offline["face_box"] == online["face_box"]
    page.context.close()


def test_without_webassembly_the_page_falls_back_to_the_server(
    browser: Browser, server: str
) -> None:
    context = browser.new_context()
    context.add_init_script("delete globalThis.WebAssembly;")
    page = context.new_page()
    page.goto(f"{server}/app/")
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=60_000)
    assert page.evaluate("document.body.dataset.ready") == "server"
    expect(page.locator("#status")).to_contain_text("using the server")
    png = encode(astronaut())
    result = choose(page, "photo.png", png)
    expected = server_predict(server, png)
    assert result["predictions"] == expected["predictions"]
    context.close()


def test_explain_draws_the_servers_map_over_the_square_the_model_saw(
    browser: Browser, server: str
) -> None:
    page = open_client(browser, server)
    page.check("#explain")
    result = choose(page, "photo.png", encode(astronaut()))
    saliency = result["saliency"]
    assert saliency["method"] == "occlusion"
    expect(page.locator("#view")).to_have_attribute(
        "data-saliency", f"occlusion {saliency['grid']}x{saliency['grid']} of {saliency['size']}px"
    )
    check_saliency_overlay(page, "#view", saliency, np.asarray(astronaut()))
    page.context.close()


def test_client_files_have_the_headers_and_types_the_browser_needs(
    server: str, model_dir: Path
) -> None:
    """Cross-origin isolation (threads in WebAssembly), content types, and nothing unlisted."""
    page = httpx.get(f"{server}/app/")
    assert page.headers["cross-origin-embedder-policy"] == "require-corp"
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    listing = httpx.get(f"{server}/app/precache.json").json()
    assert "model/model.json" in listing["files"]
    assert "model/face_detector.tflite" in listing["files"]
    wasm = httpx.get(f"{server}/app/vendor/ort/ort-wasm-simd-threaded.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    (model_dir / "best_model.pth").write_bytes(b"weights")  # beside the model, not in model.json
    assert httpx.get(f"{server}/app/model/best_model.pth").status_code == 404
    assert httpx.get(f"{server}/app/node_modules/onnxruntime-web/package.json").status_code == 404


@pytest.fixture(scope="module")
def released_server() -> Iterator[str]:
    released = REPO / RELEASED_MODEL
    with serve_in_thread(create_app(settings(released))) as url:
        yield url


def test_the_released_model_answers_alike_on_the_server_the_command_and_the_device(
    browser: Browser, released_server: str, tmp_path: Path
) -> None:
    """The committed real-face model: the same face and probabilities through /predict,
    `emotion predict` and the on-device client, on the repo's real photos."""
    page = open_client(browser, released_server)
    expect(page.locator("#model-info")).to_contain_text("FER2013")
    for name, image in (("photo.png", astronaut()), ("crop.png", fer_crop())):
        png = encode(image)
        served = server_predict(released_server, png)
        assert_same_prediction(choose(page, name, png), served)
        (tmp_path / name).write_bytes(png)
        cmd = [sys.executable, "-m", "emotion.tools.cli", "predict", str(tmp_path / name),
               "--face-model", str(FACE_MODEL)]  # fmt: skip
        (row,) = [json.loads(line) for line in subprocess.run(
            cmd, capture_output=True, text=True, check=True, cwd=REPO
        ).stdout.splitlines()]  # fmt: skip
        assert row["box"] == served["face_box"]
        for label, p in served["predictions"].items():
            assert row["probabilities"][label] == pytest.approx(p, abs=1e-6)
    page.context.close()
