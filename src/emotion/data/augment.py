"""Offline augmentation of training images (the original report's recipe), seeded per variant.

Vertical flips are part of that recipe but risky for faces: upside-down faces never occur at
test time, and flipping swaps the roles of brows and mouth, which carry the expression. Keep
``vflip_prob`` low (the default 0.1 is the original report's value) or set it to 0.
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from emotion.data.params import BalanceParams


def variant_rng(seed: int, origin: str, variant: int) -> np.random.Generator:
    """The generator of one variant: depends only on the seed, its origin and its number."""
    return np.random.default_rng([seed, zlib.crc32(origin.encode("utf-8")), variant])


def augment(pixels: np.ndarray, spec: BalanceParams, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of a grayscale uint8 image (same size), per the ``balance`` section."""
    image = Image.fromarray(pixels, mode="L")
    if rng.random() < spec.hflip_prob:
        image = ImageOps.mirror(image)
    if rng.random() < spec.vflip_prob:
        image = ImageOps.flip(image)
    angle = rng.uniform(-spec.rotation_deg, spec.rotation_deg)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    image = image.rotate(
        angle, resample=Image.Resampling.BILINEAR, fillcolor=int(np.median(border))
    )
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(*spec.brightness))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(*spec.contrast))
    image = ImageEnhance.Sharpness(image).enhance(rng.uniform(*spec.sharpness))
    return np.asarray(image, dtype=np.uint8)
