"""The DVC stage ``regions``: face-mesh region masks for every test face, checked and counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotion.core.atomic import write_json
from emotion.core.stage import log
from emotion.data.packed import load_array
from emotion.landmarks.mesh import MESH_POINTS, FaceMesh
from emotion.landmarks.params import RegionsParams
from emotion.landmarks.regions import EXPRESSIVE, REGION_LABELS, REGIONS, iou, region_labels
from emotion.landmarks.regionset import RegionSet, load_source_labels

SPLIT = "test"  #: the explain stage's probe faces come from the test split
FAILED_LISTED = 20  #: failed images named in the metrics (all are in the stage's CSV)


def fit_regions(
    mesh: FaceMesh, images: np.ndarray, paths: list[str], min_score: float
) -> RegionSet:
    """Landmarks and region labels of each image; unfit faces keep all-zero labels."""
    labels = np.zeros(images.shape, dtype=np.uint8)
    points = np.zeros((len(images), MESH_POINTS, 2), dtype=np.float32)
    scores = np.zeros(len(images), dtype=np.float32)
    for i, image in enumerate(images):
        fit = mesh.fit(image)
        points[i], scores[i] = fit.points, fit.score
        if fit.score >= min_score:
            labels[i] = region_labels(fit.points, image.shape)
    return RegionSet(paths, labels, points, scores, scores >= min_score)


def compare_with_source(regions: RegionSet, source: np.ndarray) -> dict[str, Any]:
    """IoU of the landmark regions with the dataset's own masks, per region, on fitted faces.

    ``iou_other_face`` pairs each face's landmark regions with the next face's source masks: the
    IoU that face layout alone gives, the baseline a sound landmark path must beat.
    """
    fitted = np.flatnonzero(regions.fitted)
    ours, theirs = regions.labels[fitted], source[fitted]
    shifted = np.roll(theirs, 1, axis=0)
    out: dict[str, Any] = {
        "images": len(fitted),
        "iou": {},
        "iou_other_face": {},
        "centroid_px": {},
    }
    for name in EXPRESSIVE:
        code = REGION_LABELS[name]
        a, b, c = ours == code, theirs == code, shifted == code
        out["iou"][name] = round(float(np.mean([iou(x, y) for x, y in zip(a, b, strict=True)])), 4)
        out["iou_other_face"][name] = round(
            float(np.mean([iou(x, y) for x, y in zip(a, c, strict=True)])), 4
        )
        out["centroid_px"][name] = round(float(np.nanmean(_centroid_distances(a, b))), 3)
    return out


def _by_class(frame: pd.DataFrame, failed: np.ndarray) -> dict[str, float]:
    """Failed fraction per label: the mesh fails more often on some expressions."""
    if "label" not in frame:
        return {}
    rates = pd.Series(failed, index=frame.index).groupby(frame["label"]).mean()
    return {str(k): round(float(v), 4) for k, v in rates.items()}


def _centroid_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    def centroid(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean(), ys.mean()]) if len(xs) else np.full(2, np.nan)

    return np.array([np.linalg.norm(centroid(x) - centroid(y)) for x, y in zip(a, b, strict=True)])


def run_regions(
    params: RegionsParams, *, data: Path, mesh: Path, out: Path, metrics: Path
) -> dict[str, Any]:
    """Fit the face mesh on every test image, store the region masks, write the counts."""
    images = np.asarray(load_array(data / f"{SPLIT}.npy", mmap=False))
    frame = pd.read_csv(data / f"{SPLIT}.csv", keep_default_na=False)
    start = time.perf_counter()
    regions = fit_regions(FaceMesh(mesh), images, frame["path"].tolist(), params.min_face_score)
    seconds = (time.perf_counter() - start) / max(1, len(images))
    regions.save(out, SPLIT)
    failed = np.flatnonzero(~regions.fitted)
    fitted_labels = regions.labels[regions.fitted]
    source = load_source_labels(frame, range(len(frame)), images.shape[1:], Path.cwd())
    summary = {
        "split": SPLIT,
        "images": len(images),
        "fitted": int(regions.fitted.sum()),
        "failed": len(failed),
        "failed_fraction": round(len(failed) / max(1, len(images)), 4),
        "failed_fraction_by_class": _by_class(frame, ~regions.fitted),
        "failed_examples": [regions.paths[i] for i in failed[:FAILED_LISTED]],
        "min_face_score": params.min_face_score,
        "seconds_per_image": round(seconds, 5),
        "area_fraction": {
            name: round(float((fitted_labels == REGION_LABELS[name]).mean()), 4)
            if len(fitted_labels)
            else None
            for name in REGIONS
        },
        "vs_source_masks": None if source is None else compare_with_source(regions, source),
    }
    write_json(metrics, summary)
    log.info(
        "face mesh fitted %d of %d %s faces (%.1f ms each); %d failed",
        summary["fitted"],
        len(images),
        SPLIT,
        seconds * 1000,
        len(failed),
    )
    return summary
