"""The probe set: a deterministic, class-balanced sample of test images, right and wrong."""

from __future__ import annotations

import numpy as np


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


def background_rows(labels: np.ndarray, num_classes: int, total: int, seed: int) -> np.ndarray:
    """A class-balanced background sample (for SHAP) of about ``total`` rows."""
    rng = np.random.default_rng(seed)
    per = max(1, total // num_classes)
    rows = [rng.permutation(np.flatnonzero(labels == c))[:per] for c in range(num_classes)]
    return np.sort(np.concatenate(rows))
