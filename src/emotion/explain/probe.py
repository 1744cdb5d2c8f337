"""The probe set: a deterministic, class-balanced sample of test images, right and wrong."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def select_probes(
    labels: np.ndarray, predicted: np.ndarray, num_classes: int, per_class: int, seed: int
) -> np.ndarray:
    """Row indices: ``per_class`` per class, up to a third of them misclassified ones."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        rows = rng.permutation(np.flatnonzero(labels == c))
        wrong = rows[predicted[rows] != c][: per_class // 3]
        right = rows[predicted[rows] == c][: per_class - len(wrong)]
        if len(wrong) + len(right) < per_class:  # not enough correct ones: take more wrong ones
            wrong = rows[predicted[rows] != c][: per_class - len(right)]
        chosen.extend(sorted([*wrong.tolist(), *right.tolist()]))
    return np.array(chosen, dtype=np.int64)


def load_masks(
    frame: pd.DataFrame, rows: Sequence[int], size: tuple[int, int], root: Path
) -> np.ndarray | None:
    """Boolean expression-region masks for ``rows``, or ``None`` if any is missing."""
    paths = frame["mask_path"].iloc[list(rows)] if "mask_path" in frame else pd.Series(dtype=str)
    if paths.empty or (paths == "").any():
        return None
    masks = []
    for path in paths:
        with Image.open(root / path) as im:
            mask = im.convert("L")
            if mask.size != (size[1], size[0]):
                mask = mask.resize((size[1], size[0]), Image.Resampling.NEAREST)
            masks.append(np.asarray(mask) > 0)
    return np.stack(masks)


def background_rows(labels: np.ndarray, num_classes: int, total: int, seed: int) -> np.ndarray:
    """A class-balanced background sample (for SHAP) of about ``total`` rows."""
    rng = np.random.default_rng(seed)
    per = max(1, total // num_classes)
    rows = [rng.permutation(np.flatnonzero(labels == c))[:per] for c in range(num_classes)]
    return np.sort(np.concatenate(rows))
