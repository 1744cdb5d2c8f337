"""Explanation figures: per method and class grids, the region table, mean faces per class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from emotion.core.plots import save_figure
from emotion.regions.masks import REGIONS, region_polygons

REGION_COLOURS = {
    "brows": "orange",
    "eyes": "lime",
    "mouth": "red",
    "nose": "violet",
    "cheeks": "white",
}


def class_grid(
    images: np.ndarray,
    maps: np.ndarray,
    true: Sequence[str],
    pred: Sequence[str],
    conf: Sequence[float],
    title: str,
    out: Path,
) -> None:
    """One row of probe images: the face, and the face with the saliency map overlaid."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for i in range(n):
        m = maps[i] / maps[i].max() if maps[i].max() > 0 else maps[i]
        axes[0][i].imshow(images[i], cmap="gray", vmin=0, vmax=255)
        axes[1][i].imshow(images[i], cmap="gray", vmin=0, vmax=255)
        axes[1][i].imshow(m, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        mark = "ok" if true[i] == pred[i] else "WRONG"
        axes[0][i].set_title(
            f"{true[i]} -> {pred[i]}\n{conf[i]:.2f} {mark}",
            fontsize=7,
            color="black" if mark == "ok" else "crimson",
        )
        for ax in (axes[0][i], axes[1][i]):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)


def region_table_figure(table: dict[str, Any], methods: Sequence[str], out: Path) -> None:
    """Heatmaps class x region: each method's enrichment and the ablation's probability drop;
    expected regions boxed, each class's top region marked."""
    names = [n for n, e in table.items() if e["probes"]]
    if not names:
        fig, ax = plt.subplots(figsize=(4, 1.2))
        ax.text(0.5, 0.5, "no probe face had a face mesh", ha="center", va="center")
        ax.axis("off")
        save_figure(fig, out)
        return
    panels = [(m, "enrichment", lambda e, m=m: e["methods"][m]) for m in methods]
    panels.append(("ablation (probability drop)", "drop", lambda e: e["ablation"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 0.45 * len(names) + 1.6))
    for ax, (title, field, pick) in zip(np.atleast_1d(axes), panels, strict=True):
        values = np.array([[pick(table[n])[field][r] for r in REGIONS] for n in names])
        ax.imshow(values, cmap="magma", aspect="auto")
        dark = (values - values.min()) < 0.6 * max(np.ptp(values), 1e-12)  # text white on dark
        for i, n in enumerate(names):
            top = REGIONS.index(pick(table[n])["top"])
            for j in range(len(REGIONS)):
                mark = "*" if j == top else ""
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.2f}{mark}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark[i, j] else "black",
                )
            for region in table[n]["expected"] or []:
                j = REGIONS.index(region)
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="lime", lw=1.5))
        ax.set_xticks(range(len(REGIONS)), REGIONS, fontsize=7, rotation=30)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(title, fontsize=8)
    fig.suptitle("Attribution per facial region (boxed: expected; *: top)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)


def mean_face_figure(
    name: str, images: np.ndarray, maps: dict[str, np.ndarray], points: np.ndarray, out: Path
) -> None:
    """The class's mean face, each method's mean normalised map on it, region outlines drawn
    from the mean landmarks (the crops are roughly aligned faces)."""
    face = images.mean(axis=0)
    outlines = region_polygons(points.mean(axis=0))
    fig, axes = plt.subplots(1, len(maps), figsize=(2.2 * len(maps), 2.5), squeeze=False)
    for ax, (method, method_maps) in zip(axes[0], maps.items(), strict=True):
        peak = method_maps.reshape(len(method_maps), -1).max(axis=1).clip(min=1e-12)
        mean_map = (np.clip(method_maps, 0, None) / peak[:, None, None]).mean(axis=0)
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.imshow(mean_map, cmap="jet", alpha=0.45)
        for region, parts in outlines.items():
            for part in parts:
                closed = np.vstack([part, part[:1]]) - 0.5  # pixel centres at integer + 0.5
                ax.plot(closed[:, 0], closed[:, 1], lw=0.8, color=REGION_COLOURS[region])
        ax.set_title(method, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{name}: mean attribution over {len(images)} probes", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)
