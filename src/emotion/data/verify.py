"""Verify images by decoding them fully, and record what the EDA needs about each."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from emotion.core.hashing import sha256_bytes


@dataclass(frozen=True)
class ImageInfo:
    """Facts about a readable image. Pixel sums are over its grayscale rendering."""

    format: str
    mode: str
    width: int
    height: int
    frames: int
    sha256: str
    pixel_sum: float
    pixel_sq_sum: float


@dataclass(frozen=True)
class Checked:
    """The outcome of verifying one file: ``info`` when readable, else ``error``."""

    path: Path
    info: ImageInfo | None
    error: str | None


def inspect_image(path: Path) -> Checked:
    """Decode ``path`` completely (catching truncation, not only bad headers)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Checked(path, None, f"cannot read file: {exc.strerror or exc}")
    if not data:
        return Checked(path, None, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                fmt, mode, (w, h) = im.format or "", im.mode, im.size
                frames = getattr(im, "n_frames", 1)
                gray = np.asarray(im.convert("L"), dtype=np.float64)
    except UnidentifiedImageError:
        return Checked(path, None, "not a recognised image format (is it really an image?)")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return Checked(path, None, f"too many pixels (decompression bomb?): {exc}")
    except (OSError, SyntaxError, ValueError) as exc:
        return Checked(path, None, f"damaged or truncated image data: {exc}")
    info = ImageInfo(
        format=fmt.lower(),
        mode=mode,
        width=w,
        height=h,
        frames=frames,
        sha256=sha256_bytes(data),
        pixel_sum=float(gray.sum()),
        pixel_sq_sum=float(np.square(gray).sum()),
    )
    return Checked(path, info, None)


def inspect_all(paths: Iterable[Path], workers: int = 1) -> Iterator[Checked]:
    """Verify many images, in order, using ``workers`` processes when the list is large."""
    paths = list(paths)
    bar = tqdm(total=len(paths), desc="verify", unit="img", disable=None)
    if workers > 1 and len(paths) >= 2000:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for checked in pool.map(inspect_image, paths, chunksize=256):
                bar.update()
                yield checked
    else:
        for path in paths:
            bar.update()
            yield inspect_image(path)
    bar.close()
