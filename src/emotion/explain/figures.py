"""PNG grids of explanations: per method and class, image + heatmap overlay + verdict."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from emotion.core.plots import save_figure


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
