"""Decode source images into one grayscale array, with their perceptual hashes, on all cores."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image
from tqdm import tqdm

from emotion.core.errors import DataError
from emotion.data.neardup import phash
from emotion.vision.preprocessing import square_gray


def _load_chunk(
    args: tuple[Sequence[str], int | None],
) -> tuple[np.ndarray | list[np.ndarray], list[int]]:
    paths, size = args
    images, codes = [], []
    for path in paths:
        with Image.open(path) as im:
            gray = square_gray(im, size)
        images.append(np.asarray(gray, dtype=np.uint8))
        codes.append(phash(gray))
    return images, codes


def load_images(
    paths: Sequence[str], size: int | None, workers: int = 1, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Decode images to one grayscale uint8 array and their pHash codes (uint64).

    ``size=None`` keeps native size, which must then be the same for every image.
    """
    chunks = [(paths[i : i + chunk], size) for i in range(0, len(paths), chunk)]
    images: list[np.ndarray] = []
    codes: list[int] = []
    bar = tqdm(total=len(paths), desc="decode+phash", unit="img", disable=None)
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_load_chunk, chunks)
            for part_images, part_codes in results:
                images.extend(part_images)
                codes.extend(part_codes)
                bar.update(len(part_codes))
    else:
        for part_images, part_codes in map(_load_chunk, chunks):
            images.extend(part_images)
            codes.extend(part_codes)
            bar.update(len(part_codes))
    bar.close()
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        examples = sorted(shapes)[:5]
        raise DataError(
            f"images have different sizes {examples}; set balance.image_size to resize them "
            "to one square size"
        )
    return np.stack(images) if images else np.zeros((0, 1, 1), np.uint8), np.array(
        codes, dtype=np.uint64
    )
