"""Debian's chromium driven by Playwright, for the pages' tests and the client benchmark.

Without chromium the browser tests skip, unless ``EMOTION_REQUIRE_BROWSER=1`` (set by CI): then
they fail, so a broken browser set-up cannot pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Playwright

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
