"""Debian's chromium driven by Playwright, for the pages' tests and the client benchmark.

Without chromium the browser tests skip, unless ``EMOTION_REQUIRE_BROWSER=1`` (set by CI): then
they fail, so a broken browser set-up cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

CHROMIUM = Path(os.environ.get("EMOTION_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",  # a synthetic webcam, granted without a prompt
    "--use-fake-ui-for-media-stream",
]


def require_chromium() -> None:
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} not found; install it (`apt-get install chromium`) for browser tests"
        if os.environ.get("EMOTION_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EMOTION_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    r""":func:`launch`\ed chromium for a test module (skips or fails without it)."""
    require_chromium()
    with sync_playwright() as pw:
        browser = launch(pw)
        yield browser
        browser.close()


def launch(pw: Playwright, camera_video: Path | None = None) -> Browser:
    """Chromium with a fake camera: a test pattern, or ``camera_video`` (a .y4m file)."""
    args = list(CHROMIUM_ARGS)
    if camera_video is not None:
        args.append(f"--use-file-for-fake-video-capture={camera_video}")
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=args)


def write_y4m(image: Image.Image, path: Path, frames: int = 10, fps: int = 30) -> Path:
    """A still ``image`` as a YUV 4:2:0 video (even sides), what chromium's fake camera plays."""
    width, height = image.width // 2 * 2, image.height // 2 * 2
    ycbcr = np.asarray(image.convert("RGB").crop((0, 0, width, height)).convert("YCbCr"))
    y = ycbcr[:, :, 0]
    chroma = [
        np.asarray(Image.fromarray(ycbcr[:, :, c]).resize((width // 2, height // 2), Image.BOX))
        for c in (1, 2)
    ]
    frame = b"FRAME\n" + y.tobytes() + chroma[0].tobytes() + chroma[1].tobytes()
    header = f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path


def check_saliency_overlay(
    page: Page, photo: str, saliency: dict[str, Any], original: np.ndarray
) -> None:
    """With Explain, on the canvas ``photo`` (CSS id selector) showing ``original``: the map's
    cells cover on screen (within 1.5 px) the square the page outlines on the photo, which is the
    server's ``saliency.box``; the colour scale and the map's real resolution are shown."""
    box, grid, size = saliency["box"], saliency["grid"], saliency["size"]
    overlay = page.locator(f"{photo}-saliency")
    expect(overlay).to_be_visible()
    width, height, cells = page.evaluate(
        f"""() => [document.querySelector("{photo}"), document.querySelector("{photo}-saliency")]
                 .flatMap((c, i) => (i ? [c.width] : [c.width, c.height]))"""
    )
    assert cells == grid  # one canvas pixel per cell
    shown: Any = page.locator(photo).bounding_box()
    sx, sy = shown["width"] / width, shown["height"] / height
    expected = (
        shown["x"] + box["x"] * sx,
        shown["y"] + box["y"] * sy,
        box["width"] * sx,
        box["height"] * sy,
    )
    got: Any = overlay.bounding_box()
    actual = (got["x"], got["y"], got["width"], got["height"])
    assert actual == pytest.approx(expected, abs=1.5)

    # the dashed outline of that square, drawn into the photo's pixels: white dashes on its edges
    edges = page.evaluate(
        f"""([x, y, w, h]) => {{
              const ctx = document.querySelector("{photo}").getContext("2d");
              return [ctx.getImageData(x, y, w, 1).data, ctx.getImageData(x, y, 1, h).data]
                .map((d) => Array.from(d));
            }}""",
        [box["x"], box["y"], box["width"], box["height"]],
    )
    top = original[box["y"], box["x"] : box["x"] + box["width"]]
    left = original[box["y"] : box["y"] + box["height"], box["x"]]
    for drawn, before in zip(edges, (top, left), strict=True):
        white = (np.asarray(drawn).reshape(-1, 4)[:, :3] == 255).all(axis=1).mean()
        assert white > 0.4
        assert (before == 255).all(axis=1).mean() < 0.1  # the photo itself is not white there

    legend = page.locator("#saliency-legend")
    expect(legend).to_be_visible()
    bar: Any = legend.locator(".scale-bar").bounding_box()
    assert bar["width"] >= 80
    assert bar["height"] >= 8
    assert "gradient" in legend.locator(".scale-bar").evaluate(
        "(el) => getComputedStyle(el).backgroundImage"
    )
    expect(legend).to_contain_text("no change")
    expect(legend).to_contain_text("points")
    expect(page.locator("#saliency-resolution")).to_have_text(
        f"Occlusion sensitivity at {grid}×{grid} cells of the {size}×{size} face crop: "
        "it shows which region, not which pixel."
    )
    zoom: Any = page.locator("#saliency-zoom").bounding_box()
    assert zoom["width"] >= 240  # large enough to read
