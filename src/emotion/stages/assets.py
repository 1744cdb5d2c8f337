"""Stage ``assets``: the pinned model files other stages and the server read."""

from __future__ import annotations

from pathlib import Path

from emotion.assets.model_files import PINNED, fetch_models
from emotion.core.stage import log


def run_assets(*, out: Path) -> list[Path]:
    """Every pinned model file in ``out`` (fetched once, checked by SHA-256)."""
    paths = fetch_models({out / pin.name: pin for pin in PINNED})
    for path in paths:
        log.info("model file: %s", path)
    return paths
