"""The server's web page in a real browser (Debian's chromium, Playwright) against uvicorn.

Chromium missing: see :mod:`tests.browser_fixtures` (skip locally, fail in CI).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from emotion.serve import ServeSettings, create_app
from emotion.serve.launcher import serve_in_thread

from .browser_fixtures import check_saliency_overlay, headless_chromium
from .serve_fixtures import FACE_MODEL, astronaut, encode, export_tiny_model

pytestmark = pytest.mark.browser

BOX_COLOUR = (0x00, 0xE6, 0x76)  # app.js strokeStyle


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model_dir = export_tiny_model(tmp_path_factory.mktemp("model"))
    settings = ServeSettings(model_dir=model_dir, face_model=FACE_MODEL)
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server)
    yield page
    context.close()


def choose_file(page: Page, name: str, data: bytes, mime: str) -> None:
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": data}])


def check_bars(page: Page, predictions: dict[str, float]) -> None:
    bars = page.locator("#bars li")
    expect(bars).to_have_count(len(predictions))
    for i, (label, probability) in enumerate(predictions.items()):
        bar = bars.nth(i)
        assert bar.get_attribute("data-label") == label
        fill: Any = bar.locator(".fill").bounding_box()
        track: Any = bar.locator(".track").bounding_box()
        assert fill["width"] / track["width"] == pytest.approx(probability, abs=0.01)


def test_hidden_elements_take_no_space_and_the_model_says_what_it_learned(page: Page) -> None:
    assert page.locator("#video").bounding_box() is None
    expect(page.locator("#model-info")).to_contain_text("not meant for photos")
    assert "warning" in (page.get_attribute("#model-info", "class") or "")


def test_upload_draws_the_face_box_and_the_probability_bars(page: Page, server: str) -> None:
    png = encode(astronaut())
    expected = httpx.post(f"{server}/predict", files={"file": ("a.png", png)}).json()
    choose_file(page, "astronaut.png", png, "image/png")

    expect(page.locator("#predicted")).to_contain_text(expected["predicted_class"])
    check_bars(page, expected["predictions"])
    expect(page.locator("#bars li.top")).to_have_attribute(
        "data-label", expected["predicted_class"]
    )
    preview = page.locator("#preview")
    expect(preview).to_have_attribute("data-face-box", re.compile(r"^\{.+\}$"))
    box = expected["face_box"]
    assert json.loads(preview.get_attribute("data-face-box") or "") == box
    edge = [box["x"] + box["width"] // 2, box["y"]]  # middle of the box's top side
    pixel = page.evaluate(
        """([x, y]) => Array.from(document.getElementById("preview")
             .getContext("2d").getImageData(x, y, 1, 1).data)""",
        edge,
    )
    assert pixel[:3] == list(BOX_COLOUR)
    expect(page.locator("#face-info")).to_contain_text(f"{box['width']}×{box['height']}")
    expect(page.locator("#error")).to_be_hidden()


def test_a_rejected_upload_shows_the_servers_message(page: Page) -> None:
    choose_file(page, "notes.txt", b"definitely not an image", "text/plain")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not a supported image")
    expect(page.locator("#bars li")).to_have_count(0)


def test_webcam_snapshot_is_classified(page: Page) -> None:
    page.uncheck("#detect-face")  # the synthetic camera shows a test pattern, not a face
    page.click("#camera-toggle")
    page.wait_for_function("document.getElementById('video').videoWidth > 0")
    page.click("#camera-snap")
    expect(page.locator("#bars li")).to_have_count(6)
    expect(page.locator("#face-info")).to_contain_text("face detection off")
    assert page.locator("#preview").get_attribute("data-face-box") is None
    page.click("#camera-toggle")
    expect(page.locator("#camera-snap")).to_be_hidden()


def test_explain_draws_the_map_over_the_square_the_model_saw(page: Page, server: str) -> None:
    """The cells sit exactly on the dashed square outlined on the photo (the server's box), at
    the page's width and at a phone's; the colour scale and the map's resolution are shown."""
    png = encode(astronaut())
    expected = httpx.post(f"{server}/predict?explain=true", files={"file": ("a.png", png)}).json()
    saliency = expected["saliency"]
    page.check("#explain")
    choose_file(page, "astronaut.png", png, "image/png")
    grid, size = saliency["grid"], saliency["size"]
    expect(page.locator("#preview")).to_have_attribute(
        "data-saliency", f"occlusion {grid}x{grid} of {size}px"
    )
    check_saliency_overlay(page, "#preview", saliency, np.asarray(astronaut()))
    page.set_viewport_size({"width": 420, "height": 900})  # the photo shrinks; the cells follow
    check_saliency_overlay(page, "#preview", saliency, np.asarray(astronaut()))
    expect(page.locator("#saliency")).to_contain_text(f"“{expected['predicted_class']}”")

    page.uncheck("#explain")
    choose_file(page, "again.png", png, "image/png")
    expect(page.locator("#preview-saliency")).to_be_hidden()
    expect(page.locator("#saliency")).to_be_hidden()
