"""The DVC stage ``regions``: face-mesh region masks for every test face, checked and counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotion.core.errors import DataError
from emotion.core.results import write_report
from emotion.core.stage import log
from emotion.data.packed import load_array
from emotion.regions.checks import compare_with_source
from emotion.regions.fitting import fit_regions
from emotion.regions.masks import REGION_LABELS, REGIONS
from emotion.regions.mesh import FaceMesh
from emotion.regions.params import RegionsParams
from emotion.regions.regionset import load_source_labels

SPLIT = "test"  #: the explain stage's probe faces come from the test split
FAILED_LISTED = 20  #: failed images named in the report (all are in the stage's CSV)


def _by_class(frame: pd.DataFrame, failed: np.ndarray) -> dict[str, float]:
    """Failed fraction per label: the mesh fails more often on some expressions."""
    if "label" not in frame:
        return {}
    rates = pd.Series(failed, index=frame.index).groupby(frame["label"]).mean()
    return {str(k): round(float(v), 4) for k, v in rates.items()}


def run_regions(
    params: RegionsParams, *, data: Path, mesh: Path, out: Path, report: Path
) -> dict[str, Any]:
    """Fit the face mesh on every test image, store the region masks, write the counts."""
    images = np.asarray(load_array(data / f"{SPLIT}.npy", mmap=False))
    frame = pd.read_csv(data / f"{SPLIT}.csv", keep_default_na=False)
    if len(frame) != len(images):
        raise DataError(
            f"{data}/{SPLIT}.csv has {len(frame)} rows but {SPLIT}.npy has {len(images)} "
            "images; rerun the balance stage"
        )
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
        "vs_source_masks": None
        if source is None
        else compare_with_source(regions.labels, regions.fitted, source),
    }
    rows = [
        {"class": c, "failed_fraction": v} for c, v in summary["failed_fraction_by_class"].items()
    ]
    write_report(summary, rows, report)
    log.info(
        "face mesh fitted %d of %d %s faces (%.1f ms each); %d failed",
        summary["fitted"],
        len(images),
        SPLIT,
        seconds * 1000,
        len(failed),
    )
    return summary
