"""Is the landmark path sound? Landmark regions against a dataset's own region masks."""

from __future__ import annotations

from typing import Any

import numpy as np

from emotion.regions.masks import EXPRESSIVE, REGION_LABELS, iou


def compare_with_source(
    labels: np.ndarray, fitted: np.ndarray, source: np.ndarray
) -> dict[str, Any] | None:
    """IoU of the landmark regions with the dataset's masks, per region, on fitted faces.

    ``iou_other_face`` pairs each face's landmark regions with the previous face's masks: the IoU
    that face layout alone gives, the baseline a sound landmark path must beat. ``None`` when no
    face fitted; a region absent from every fitted face reports ``None``.
    """
    rows = np.flatnonzero(fitted)
    if not len(rows):
        return None
    ours, theirs = labels[rows], source[rows]
    shifted = np.roll(theirs, 1, axis=0)
    out: dict[str, Any] = {"images": len(rows), "iou": {}, "iou_other_face": {}, "centroid_px": {}}
    for name in EXPRESSIVE:
        code = REGION_LABELS[name]
        a, b, c = ours == code, theirs == code, shifted == code
        present = a.any(axis=(1, 2)) & b.any(axis=(1, 2))
        if not present.any():
            out["iou"][name] = out["iou_other_face"][name] = out["centroid_px"][name] = None
            continue
        out["iou"][name] = _mean([iou(x, y) for x, y in zip(a, b, strict=True)])
        out["iou_other_face"][name] = _mean([iou(x, y) for x, y in zip(a, c, strict=True)])
        out["centroid_px"][name] = _mean(
            [
                float(np.linalg.norm(_centroid(x) - _centroid(y)))
                for x, y in zip(a[present], b[present], strict=True)
            ],
            3,
        )
    return out


def _mean(values: list[float], digits: int = 4) -> float:
    return round(float(np.mean(values)), digits)


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])
