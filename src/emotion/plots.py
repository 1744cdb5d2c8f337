"""Small matplotlib figures written atomically (deterministic PNG bytes)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from emotion.atomic import write_bytes


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
