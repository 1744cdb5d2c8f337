"""Small matplotlib figures written atomically (deterministic PNG bytes)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from emotion.core.atomic import write_bytes


def save_figure(fig: plt.Figure, out: Path, dpi: int = 80) -> None:
    """Write ``fig`` as PNG atomically, without the version stamp, and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    write_bytes(out, buf.getvalue())


def before_after_bars(table: pd.DataFrame, title: str, out: Path) -> None:
    """Grouped horizontal bars of ``before``/``after`` counts per ``class``."""
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(table) + 1.2))
    y = np.arange(len(table))
    ax.barh(y - 0.2, table["before"], height=0.4, label="before", color="#9aa5b1")
    ax.barh(y + 0.2, table["after"], height=0.4, label="after", color="#2f6fb0")
    ax.set_yticks(y, table["class"])
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    save_figure(fig, out)


def confusion_heatmap(counts: np.ndarray, classes: list[str], out: Path) -> None:
    """Row-normalised confusion matrix (recall per class on the diagonal) with counts."""
    norm = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if norm[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({counts[i, j]})",
                ha="center",
                va="center",
                fontsize=7,
                color=color,
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("Confusion (row-normalised)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out)


def reliability_diagram(curves: Mapping[str, tuple[pd.DataFrame, float]], out: Path) -> None:
    """Accuracy vs mean confidence per bin for each labelled curve (bins, ECE), and the diagonal."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    for (label, (bins, ece)), color in zip(curves.items(), ("#c0504d", "#2f6fb0"), strict=False):
        used = bins["count"] > 0
        ax.plot(
            bins["confidence"][used],
            bins["accuracy"][used],
            "o-",
            color=color,
            markersize=4,
            label=f"{label} (ECE {ece:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("accuracy in bin")
    ax.set_title("Reliability (test split)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)
