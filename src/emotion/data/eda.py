"""Exploratory data analysis of an ingest manifest: metrics, class distribution, samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

#: ``metrics/eda.json``: the headline of the EDA report (see :mod:`emotion.core.results`).
HEADLINE = {"images": "total"}


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def eda_metrics(
    manifest: pd.DataFrame,
    classes: Sequence[str],
    *,
    dropped: Mapping[str, int],
    quarantined: int,
    ignored_files: int,
) -> dict[str, Any]:
    """Summary statistics of the dataset (``reports/eda.json``)."""
    total = len(manifest)
    per_class = manifest["label"].value_counts().reindex(list(classes), fill_value=0)
    counts = per_class.to_numpy(dtype=float)
    n_px = (manifest["width"] * manifest["height"]).to_numpy(dtype=float)
    means = manifest["pixel_mean"].to_numpy(dtype=float)
    sq = manifest["pixel_std"].to_numpy(dtype=float) ** 2 + means**2
    mean = float((means * n_px).sum() / n_px.sum()) if total else 0.0
    std = float(np.sqrt(max((sq * n_px).sum() / n_px.sum() - mean**2, 0.0))) if total else 0.0
    dup = manifest[manifest["duplicate_of"] != ""]
    conflict_groups = manifest.loc[manifest["label_conflict"].astype(bool), "sha256"].nunique()
    sizes = (manifest["width"].astype(str) + "x" + manifest["height"].astype(str)).value_counts()
    return {
        "total": total,
        "classes": {
            c: {
                "count": int(per_class[c]),
                "percent": round(100 * per_class[c] / total, 2) if total else 0.0,
            }
            for c in classes
        },
        "class_count": {
            "min": int(counts.min()),
            "max": int(counts.max()),
            "mean": round(float(counts.mean()), 2),
            "std": round(float(counts.std()), 2),
        },
        "imbalance_ratio": round(float(counts.max() / counts.min()), 3) if counts.min() else None,
        "splits": _counts(manifest["split"].replace("", "none")),
        "formats": _counts(manifest["format"]),
        "modes": _counts(manifest["mode"]),
        "sizes": {str(k): int(v) for k, v in sizes.head(10).items()},
        "width": {"min": int(manifest["width"].min()), "max": int(manifest["width"].max())}
        if total
        else {},
        "height": {"min": int(manifest["height"].min()), "max": int(manifest["height"].max())}
        if total
        else {},
        "pixel_mean": round(mean, 3),
        "pixel_std": round(std, 3),
        "dropped": dict(sorted(dropped.items())),
        "quarantined": quarantined,
        "ignored_files": ignored_files,
        "duplicates": {
            "extra_copies": len(dup),
            "groups": int(dup["sha256"].nunique()),
            "label_conflict_groups": int(conflict_groups),
        },
        "with_mask": int((manifest["mask_path"] != "").sum()),
    }


def class_distribution(manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Per-class counts as a two-column table for a DVC bar plot."""
    counts = manifest["label"].value_counts().reindex(list(classes), fill_value=0)
    return pd.DataFrame({"class": list(classes), "count": counts.to_numpy()})


def sample_grid(
    manifest: pd.DataFrame, classes: Sequence[str], per_class: int, root: Path, out: Path
) -> None:
    """Save a PNG grid with ``per_class`` deterministic sample images per class (rows)."""
    import matplotlib.pyplot as plt

    from emotion.core.plots import save_figure

    fig, axes = plt.subplots(
        len(classes), per_class, figsize=(per_class * 1.1, len(classes) * 1.25), squeeze=False
    )
    for row, label in enumerate(classes):
        picks = manifest[manifest["label"] == label].sort_values("sha256").head(per_class)
        for col in range(per_class):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
            if col < len(picks):
                with Image.open(root / picks.iloc[col]["path"]) as im:
                    ax.imshow(np.asarray(im.convert("L")), cmap="gray", vmin=0, vmax=255)
            else:
                ax.set_frame_on(False)
    fig.suptitle("Samples per class", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out)
