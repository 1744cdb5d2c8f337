"""Ingest: find images, map labels, verify every file, build the manifest (+ quarantine)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from emotion.core.errors import DataError
from emotion.data.labels import LabelMap
from emotion.data.manifest import (
    MANIFEST_COLUMNS,
    mark_duplicates,
    project_relative,
)
from emotion.data.sources import IMAGE_SUFFIXES, BadRecord, RawItem, import_fer_csv, scan_folder
from emotion.data.verify import ImageInfo, inspect_all

QUARANTINE_COLUMNS = ("path", "reason")
_MAX_LISTED = 200


@dataclass(frozen=True)
class IngestResult:
    """The verified manifest plus what was left out and why."""

    manifest: pd.DataFrame
    quarantine: pd.DataFrame
    dropped: dict[str, int]
    ignored_files: int


def find_items(source: Path, scratch: Path) -> tuple[list[RawItem], list[BadRecord], int]:
    """Raw items of a folder tree or FER2013 CSV (CSV rows are decoded into ``scratch``)."""
    if not source.exists():
        raise DataError(
            f"ingest.source: '{source}' does not exist. Point it at a class-folder tree or a "
            "FER2013 CSV (see README, 'Use a real dataset')."
        )
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise DataError(
                f"ingest.source: '{source}' is a file but not a .csv (FER2013 CSV expected)"
            )
        items, bad = import_fer_csv(source, scratch)
        return items, bad, 0
    items, bad, ignored = scan_folder(source)
    if not items and not bad:
        raise DataError(
            f"ingest.source: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under '{source}'"
        )
    return items, bad, ignored


def _report_bad(bad: list[tuple[str, str]]) -> str:
    lines = [f"  {where}: {reason}" for where, reason in bad[:_MAX_LISTED]]
    if len(bad) > _MAX_LISTED:
        lines.append(f"  ... and {len(bad) - _MAX_LISTED} more")
    return "\n".join(lines)


def manifest_row(
    item: RawItem, label: str, info: ImageInfo, path: Path, root: Path
) -> dict[str, Any]:
    """The manifest row of one verified image (``path``: where it will live)."""
    n = info.width * info.height
    mean = info.pixel_sum / n
    return {
        "path": project_relative(path, root),
        "label": label,
        "raw_label": item.raw_label,
        "split": item.split,
        "format": info.format,
        "mode": info.mode,
        "width": info.width,
        "height": info.height,
        "pixel_mean": mean,
        "pixel_std": max(info.pixel_sq_sum / n - mean**2, 0.0) ** 0.5,
        "sha256": info.sha256,
        "mask_path": project_relative(item.mask, root) if item.mask else "",
    }


def ingest(
    source: Path,
    labels: LabelMap,
    *,
    on_corrupt: Literal["fail", "skip"],
    scratch: Path,
    root: Path,
    relocate: tuple[Path, Path] | None = None,
    workers: int = 1,
) -> IngestResult:
    """Verify and describe every image of ``source``.

    ``scratch`` receives images decoded from a CSV source; ``relocate=(tmp, final)`` rewrites
    their recorded paths to where the stage's output folder will finally live. Paths in the
    manifest are relative to ``root`` (the project root).
    """
    items, bad_records, ignored = find_items(source, scratch)
    labels.check_known({i.raw_label: str(i.path) for i in reversed(items)})

    dropped: Counter[str] = Counter()
    kept: list[tuple[RawItem, str]] = []
    for item in items:
        label = labels.resolve(item.raw_label)
        if label is None:
            dropped[item.raw_label.lower()] += 1
        else:
            kept.append((item, label))

    bad = [(r.where, r.reason) for r in bad_records]
    rows = []
    for (item, label), checked in zip(
        kept, inspect_all([i.path for i, _ in kept], workers), strict=True
    ):
        if checked.info is None:
            bad.append((project_relative(item.path, root), checked.error or "unreadable"))
            continue
        path = item.path
        if relocate is not None and path.is_relative_to(relocate[0]):
            path = relocate[1] / path.relative_to(relocate[0])
        rows.append(manifest_row(item, label, checked.info, path, root))
    if bad and on_corrupt == "fail":
        raise DataError(
            f"{len(bad)} unreadable image(s) or record(s) in '{source}':\n{_report_bad(bad)}\n"
            "Fix or remove them, or set ingest.on_corrupt: skip to quarantine them "
            "(listed in quarantine.csv)."
        )
    if not rows:
        raise DataError(
            f"ingest.source: no usable images in '{source}' after dropping and verification"
        )
    manifest = mark_duplicates(pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS[:-2]]))
    quarantine = pd.DataFrame(sorted(bad), columns=list(QUARANTINE_COLUMNS))
    return IngestResult(manifest, quarantine, dict(dropped), ignored)
