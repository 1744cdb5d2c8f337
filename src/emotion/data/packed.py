"""Packed image splits: one uint8 array (N, H, W) per split plus a CSV manifest row per image.

A FER-sized training split is tens of thousands of 48x48 images; as separate files they make
``dvc status``/``push`` slow (docs/benchmarks.md). Packed, a split is one file that the train
stage memory-maps straight into a tensor cache.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from emotion.core.atomic import write_bytes
from emotion.core.errors import DataError


def save_array(path: Path, array: np.ndarray) -> None:
    """Write a ``.npy`` file atomically."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue())


def load_array(path: Path, mmap: bool = True) -> np.ndarray:
    """Read a packed split (memory-mapped by default)."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: packed split not found; run `dvc repro balance` first") from None
