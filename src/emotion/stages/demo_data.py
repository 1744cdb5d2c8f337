"""Stage ``demo_data``: the procedural demo face dataset (images + expression masks)."""

from __future__ import annotations

from pathlib import Path

from emotion.core.stage import log, worker_count
from emotion.demo_data.dataset import generate_dataset
from emotion.demo_data.params import DemoDataParams


def run_demo_data(params: DemoDataParams, *, out: Path) -> dict[str, int]:
    """Write ``params.count`` demo faces to ``out`` (replaced atomically); images per class."""
    counts = generate_dataset(params, out, workers=worker_count())
    log.info("wrote %d demo faces to %s: %s", sum(counts.values()), out, counts)
    return counts
