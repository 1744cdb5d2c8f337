"""Shared fixtures: repo paths, small synthetic image trees, and the venv's tools."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv running the tests (has dvc, python, emotion)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: the venv's tools first on PATH, no DVC analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["EMOTION_WORKERS"] = env.get("EMOTION_WORKERS", "1")
    env.update(extra)
    return env


def image_bytes(seed: int, fmt: str = "PNG", size: int = 16) -> bytes:
    """A small random grayscale image encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[dict[str, int]], Path]:
    """Build ``{relative_folder: n_images}`` as a folder tree of distinct small images."""

    def build(spec: dict[str, int], root: Path | None = None) -> Path:
        root = root or tmp_path / "raw"
        seed = 0
        for folder, n in spec.items():
            for i in range(n):
                seed += 1
                fmt = "JPEG" if i % 3 == 2 else "PNG"
                ext = "jpg" if fmt == "JPEG" else "png"
                path = root / folder / f"img{i:03d}.{ext}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(image_bytes(seed * 7919 + len(folder), fmt))
        return root

    return build
