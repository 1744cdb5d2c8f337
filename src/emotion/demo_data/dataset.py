"""Write the demo face dataset: class folders of PNG/JPEG faces plus ground-truth masks.

Layout (a class-folder tree that ``ingest`` reads like any other dataset)::

    <out>/<class>/<index>.png|.jpg     48x48 grayscale faces
    <out>/_masks/<class>/<index>.png   expression-region label masks (see faces.MASK_REGIONS)
    <out>/_meta.csv                    every sampled parameter, one row per image

Every image draws from its own generator seeded by ``(seed, index)``, so the output is
byte-identical for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from emotion.core.atomic import replace_dir
from emotion.demo_data.expressions import DEMO_CLASSES
from emotion.demo_data.faces import (
    render_face,
    sample_expression,
    sample_identity,
    sample_nuisance,
)
from emotion.demo_data.params import DemoDataParams

MASKS_DIR = "_masks"
META_FILE = "_meta.csv"


def class_quotas(count: int, proportions: Mapping[str, float]) -> dict[str, int]:
    """Split ``count`` into per-class integers by largest remainder (exact proportions)."""
    total = sum(proportions.values())
    raw = {c: count * proportions[c] / total for c in DEMO_CLASSES}
    quotas = {c: int(np.floor(v)) for c, v in raw.items()}
    by_remainder = sorted(DEMO_CLASSES, key=lambda c: (-(raw[c] - quotas[c]), c))
    for c in by_remainder[: count - sum(quotas.values())]:
        quotas[c] += 1
    return quotas


def assign_labels(params: DemoDataParams) -> list[str]:
    """Per-index class labels: exact quotas in a seeded random order."""
    quotas = class_quotas(params.count, params.class_proportions)
    labels = np.array([c for c in DEMO_CLASSES for _ in range(quotas[c])])
    np.random.default_rng([params.seed, 0xC1A55]).shuffle(labels)
    return [str(x) for x in labels]


def encode(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    """Encode a grayscale array as PNG or baseline JPEG (deterministic bytes)."""
    buf = io.BytesIO()
    image = Image.fromarray(pixels, mode="L")
    if fmt == "jpg":
        image.save(buf, format="JPEG", quality=quality, optimize=False, progressive=False)
    else:
        image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def make_sample(
    params: DemoDataParams, index: int, label: str
) -> tuple[str, bytes, bytes, dict[str, Any]]:
    """Generate sample ``index``: (relative image path, image bytes, mask PNG bytes, metadata)."""
    rng = np.random.default_rng([params.seed, index])
    ident = sample_identity(rng)
    expr = sample_expression(rng, label, params.expression_spread)
    nuis = sample_nuisance(rng, params)
    fmt = "jpg" if rng.random() < params.jpeg_fraction else "png"
    pixels, mask = render_face(ident, expr, nuis, params.image_size, rng)
    rel = f"{label}/{index:06d}.{fmt}"
    meta: dict[str, Any] = {"path": rel, "label": label, "index": index, "format": fmt}
    for prefix, record in (("expr", expr), ("id", ident), ("nuis", nuis)):
        for key, value in asdict(record).items():
            meta[f"{prefix}_{key}"] = _fmt(value)
    return rel, encode(pixels, fmt, params.jpeg_quality), encode(mask, "png", 0), meta


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return " ".join(str(_fmt(v)) for v in value)
    return "" if value is None else value


def _write_chunk(
    params: DemoDataParams, out: Path, items: Sequence[tuple[int, str]]
) -> list[dict[str, Any]]:
    rows = []
    for index, label in items:
        rel, image, mask, meta = make_sample(params, index, label)
        (out / rel).write_bytes(image)
        (out / MASKS_DIR / rel).with_suffix(".png").write_bytes(mask)
        rows.append(meta)
    return rows


def generate_dataset(
    params: DemoDataParams, out_dir: str | os.PathLike[str], workers: int = 1
) -> dict[str, int]:
    """Write the dataset to ``out_dir`` atomically (replacing it); returns per-class counts."""
    labels = assign_labels(params)
    items = list(enumerate(labels))
    chunk = 256
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    with replace_dir(out_dir) as tmp:
        for c in DEMO_CLASSES:
            (tmp / c).mkdir()
            (tmp / MASKS_DIR / c).mkdir(parents=True)
        rows: list[dict[str, Any]] = []
        bar = tqdm(total=len(items), desc="demo_data", unit="img", disable=None)
        if workers > 1 and len(chunks) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for part in pool.map(
                    _write_chunk, [params] * len(chunks), [tmp] * len(chunks), chunks
                ):
                    rows.extend(part)
                    bar.update(len(part))
        else:
            for part in map(_write_chunk, [params] * len(chunks), [tmp] * len(chunks), chunks):
                rows.extend(part)
                bar.update(len(part))
        bar.close()
        with (tmp / META_FILE).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return {c: labels.count(c) for c in DEMO_CLASSES}
