"""The manifests: ingest's one row per verified image, and the per-split ones balance writes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from emotion.core.atomic import write_text
from emotion.core.errors import DataError
from emotion.core.reading import read_json

#: Columns of ``manifest.csv`` in order. ``path``/``mask_path`` are relative to the project root.
MANIFEST_COLUMNS = (
    "path",
    "label",
    "raw_label",
    "split",
    "format",
    "mode",
    "width",
    "height",
    "pixel_mean",
    "pixel_std",
    "sha256",
    "mask_path",
    "duplicate_of",
    "label_conflict",
)


#: Columns of the per-split manifests; row ``index`` is the image's row in ``<split>.npy``.
SPLIT_COLUMNS = (
    "index",
    "path",
    "label",
    "label_index",
    "origin",
    "variant",
    "is_augmented",
    "is_synthetic",
    "group",
    "source_split",
    "sha256",
    "mask_path",
)


def project_relative(path: Path, root: Path) -> str:
    """``path`` relative to the project root, POSIX style (``../`` allowed for outside data)."""
    return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()


def mark_duplicates(manifest: pd.DataFrame) -> pd.DataFrame:
    """Fill ``duplicate_of`` (first path with the same bytes) and ``label_conflict``."""
    df = manifest.sort_values("path", kind="stable").reset_index(drop=True)
    first = df.groupby("sha256")["path"].transform("first")
    df["duplicate_of"] = first.where(first != df["path"], "")
    df["label_conflict"] = df.groupby("sha256")["label"].transform("nunique") > 1
    return df


def to_csv_text(df: pd.DataFrame, float_format: str = "%.4f") -> str:
    """Deterministic CSV text (fixed column order, ``\\n`` line ends, fixed float format)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n", float_format=float_format)
    return buf.getvalue()


def write_manifest(df: pd.DataFrame, path: Path) -> None:
    """Write the manifest atomically with the canonical columns."""
    write_text(path, to_csv_text(df.loc[:, list(MANIFEST_COLUMNS)]))


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest, checking its columns."""
    try:
        df = pd.read_csv(path, keep_default_na=False, dtype={"split": str, "mask_path": str})
    except FileNotFoundError:
        raise DataError(f"{path}: manifest not found; run `dvc repro ingest` first") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {missing}; re-run the ingest stage")
    return df


def read_classes(folder: Path) -> list[str]:
    """The class list a data stage wrote to ``<folder>/labels.json``."""
    return read_json(folder / "labels.json", "class list", "rerun the stage that wrote it")[
        "classes"
    ]
