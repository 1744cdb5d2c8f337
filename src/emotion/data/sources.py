"""Find the images of a raw dataset: a class-folder tree (any depth) or a FER2013 CSV.

Folder trees: the label is the image's parent folder; an ancestor folder named like a split
(``train``, ``validation``/``val``, ``test``, FER's ``PublicTest``/``PrivateTest``) sets the
predefined split. Entries starting with ``.`` or ``_`` are ignored, except ``_masks/``, which
mirrors the image tree with ground-truth expression masks (``<stem>.png``).

FER2013 CSV (``emotion,pixels[,Usage]``): rows are decoded into PNG files under an output folder,
so both layouts yield the same :class:`RawItem` records.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from emotion.core.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
MASKS_DIR = "_masks"
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "publictest": "val",
    "test": "test",
    "privatetest": "test",
}
#: FER2013's label indices (``emotion`` column), in the dataset's own names.
FER2013_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}


@dataclass(frozen=True)
class RawItem:
    """One image of the raw dataset before verification."""

    path: Path
    raw_label: str
    split: str  # "" when the dataset predefines none
    mask: Path | None = None


@dataclass(frozen=True)
class BadRecord:
    """A source record that could not be read (bad CSV row, image outside any class folder)."""

    where: str
    reason: str


def _walk_sorted(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            if not name.startswith((".", "_")):
                yield Path(dirpath) / name


def scan_folder(root: Path) -> tuple[list[RawItem], list[BadRecord], int]:
    """Images under ``root`` as (items, records outside any class folder, ignored file count)."""
    items, bad, ignored = [], [], 0
    for path in _walk_sorted(root):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            ignored += 1
            continue
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            bad.append(BadRecord(str(path), "image is not inside a class folder"))
            continue
        split = next(
            (SPLIT_NAMES[p.lower()] for p in rel.parts[:-2] if p.lower() in SPLIT_NAMES), ""
        )
        mask = (root / MASKS_DIR / rel).with_suffix(".png")
        items.append(RawItem(path, rel.parts[-2], split, mask if mask.is_file() else None))
    return items, bad, ignored


def import_fer_csv(csv_path: Path, images_dir: Path) -> tuple[list[RawItem], list[BadRecord]]:
    """Decode a FER2013-style CSV into PNGs under ``images_dir``; returns (items, bad rows)."""
    items, bad = [], []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(
                f"{csv_path}: not a FER2013 CSV: missing column(s) {sorted(missing)}; "
                f"expected header 'emotion,pixels,Usage', found {reader.fieldnames}"
            )
        for line_no, row in enumerate(reader, start=2):
            where = f"{csv_path}:{line_no}"
            try:
                pixels = _decode_pixels(row["pixels"])
                label = _fer_label(row["emotion"])
                usage = (row.get("Usage") or "").strip().lower()
                split = FER2013_USAGE.get(usage, SPLIT_NAMES.get(usage, ""))
            except ValueError as exc:
                bad.append(BadRecord(where, str(exc)))
                continue
            out = images_dir / (split or "all") / label / f"{line_no:07d}.png"
            buf = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buf, format="PNG")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(buf.getvalue())  # inside the stage's temp output folder
            items.append(RawItem(out, label, split))
    return items, bad


def _fer_label(value: str) -> str:
    value = value.strip()
    if value.isdigit() and int(value) < len(FER2013_LABELS):
        return FER2013_LABELS[int(value)]
    if value and not value.isdigit():
        return value  # already a name
    raise ValueError(f"emotion {value!r} is not 0-{len(FER2013_LABELS) - 1} or a label name")


def _decode_pixels(text: str) -> np.ndarray:
    try:
        values = np.array([int(v) for v in text.split()], dtype=np.int64)
    except ValueError:
        raise ValueError("pixels must be space-separated integers") from None
    side = round(np.sqrt(values.size))
    if values.size == 0 or side * side != values.size:
        raise ValueError(f"pixels has {values.size} values, not a square image (48x48 = 2304)")
    if values.min() < 0 or values.max() > 255:
        raise ValueError("pixel values must be within 0-255")
    return values.astype(np.uint8).reshape(side, side)
