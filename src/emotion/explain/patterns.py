"""The expected-patterns table: where each method's attribution falls per facial region and
class, which region's removal costs the class most, and whether that matches the expectation.

Probes are grouped by the class their maps explain (the prediction), so a row answers "what does
the model look at when it says *happy*". Attribution *share* is the fraction of a map's positive
mass inside a region; *enrichment* divides it by the region's share of the face crop (1.0: no
more than a uniform map), so large regions such as the cheeks do not win by area. A class
matches when its top region (by enrichment, or by probability drop for ablation) is one of
``explain.expected_regions``; an empty list means *balanced*: no region's value exceeds
``explain.balanced_ratio`` times the mean over regions (for ablation drops whose mean is not
positive: no region's removal lowers the probability at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from emotion.core.errors import ConfigError
from emotion.explain.checks import ProbFn
from emotion.explain.params import ExplainParams
from emotion.regions.masks import EXPRESSIVE, REGION_LABELS, REGIONS, region_mask


@dataclass(frozen=True)
class ProbeRegions:
    """The probe faces' regions: expression masks for localisation, region labels for the table."""

    source: Literal["dataset", "landmarks"]
    mask_rows: np.ndarray  #: probe positions with an expression mask
    masks: np.ndarray  #: bool (len(mask_rows), H, W): brows, eyes and mouth
    label_rows: np.ndarray  #: probe positions whose face mesh fitted
    labels: np.ndarray  #: uint8 (len(label_rows), H, W) region labels
    unfit: np.ndarray  #: probe positions where the face mesh did not fit

    @classmethod
    def build(
        cls, landmark_labels: np.ndarray, fitted: np.ndarray, source_labels: np.ndarray | None
    ) -> ProbeRegions:
        """Use the dataset's masks for localisation when it has them, else the landmarks'."""
        rows = np.flatnonzero(fitted)
        labels = landmark_labels[rows]
        if source_labels is not None:
            source, mask_rows, masks = "dataset", np.arange(len(fitted)), source_labels > 0
        else:
            source, mask_rows, masks = "landmarks", rows, region_mask(labels, EXPRESSIVE)
        return cls(source, mask_rows, masks, rows, labels, np.flatnonzero(~fitted))


def check_expected_classes(params: ExplainParams, classes: list[str]) -> None:
    """Fail before any work when ``explain.expected_regions`` names a class the model lacks."""
    unknown = sorted(set(params.expected_regions) - set(classes))
    if unknown:
        raise ConfigError(
            f"explain.expected_regions names {unknown}, not among the model's classes "
            f"{classes}: rename or remove them in the params file"
        )


def region_shares(maps: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image and region: share of the positive attribution and share of the crop's area."""
    positive = np.clip(maps, 0, None)
    total = positive.sum(axis=(1, 2))
    share = np.zeros((len(maps), len(REGIONS)))
    area = np.zeros_like(share)
    for j, name in enumerate(REGIONS):
        inside = labels == REGION_LABELS[name]
        area[:, j] = inside.mean(axis=(1, 2))
        mass = (positive * inside).sum(axis=(1, 2))
        share[:, j] = np.divide(mass, total, out=area[:, j].copy(), where=total > 0)
    return share, area


def ablation_drops(
    prob: ProbFn, images: np.ndarray, labels: np.ndarray, targets: np.ndarray, intact: np.ndarray
) -> np.ndarray:
    """Per image and region: fall in the explained class's probability when the region is
    filled with the image mean (one batch of images x regions); ``intact`` holds the images'
    probabilities already computed."""
    batch = np.repeat(images[:, None], len(REGIONS), axis=1).copy()
    fill = np.broadcast_to(images.mean(axis=(1, 2))[:, None, None], images.shape)
    for j, name in enumerate(REGIONS):
        inside = labels == REGION_LABELS[name]
        batch[:, j][inside] = fill[inside]
    base = intact[np.arange(len(images)), targets]
    blanked = prob(batch.reshape(-1, *images.shape[1:])).reshape(len(images), len(REGIONS), -1)
    return base[:, None] - blanked[np.arange(len(images)), :, targets]


def _verdict(values: np.ndarray, expected: list[str] | None, ratio: float) -> dict[str, Any]:
    top = REGIONS[int(np.argmax(values))]
    if expected is None:
        matches = None
    elif expected:
        matches = top in expected
    else:  # balanced: no region above ratio x the mean (none above 0 when the mean is <= 0)
        matches = bool(values.max() <= max(ratio * float(values.mean()), 0.0))
    return {"top": top, "matches": matches}


def _by_region(values: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(REGIONS, values, strict=True)}


def pattern_table(
    params: ExplainParams,
    classes: list[str],
    maps: dict[str, np.ndarray],
    drops: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
) -> dict[str, Any]:
    """The per-class region table for the probes with a face mesh (rows of ``labels``).

    ``maps`` holds each method's maps for those probes (the random baseline included).
    """
    shares = {m: region_shares(maps[m], labels) for m in maps}
    table: dict[str, Any] = {}
    for c, name in enumerate(classes):
        rows = np.flatnonzero(targets == c)
        expected = params.expected_regions.get(name)
        entry: dict[str, Any] = {"probes": len(rows), "expected": expected}
        if len(rows):
            area = next(iter(shares.values()))[1][rows].mean(axis=0)
            entry["area"] = _by_region(area)
            entry["methods"] = {}
            for m in maps:
                share = shares[m][0][rows].mean(axis=0)
                enrichment = share / np.maximum(area, 1e-9)
                entry["methods"][m] = {
                    "share": _by_region(share),
                    "enrichment": _by_region(enrichment),
                    **_verdict(enrichment, expected, params.balanced_ratio),
                }
            drop = drops[rows].mean(axis=0)
            entry["ablation"] = {
                "drop": _by_region(drop),
                **_verdict(drop, expected, params.balanced_ratio),
            }
        table[name] = entry
    return {"grouped_by": "explained (predicted) class", "classes": table, "matches": _tally(table)}


def _tally(table: dict[str, Any]) -> dict[str, str]:
    """``"k/n"`` matching classes per method and for ablation, over classes with a verdict."""
    verdicts: dict[str, list[bool]] = {}
    for entry in table.values():
        for key, result in [*entry.get("methods", {}).items(), ("ablation", entry.get("ablation"))]:
            if result and result["matches"] is not None:
                verdicts.setdefault(key, []).append(result["matches"])
    return {key: f"{sum(v)}/{len(v)}" for key, v in verdicts.items()}
