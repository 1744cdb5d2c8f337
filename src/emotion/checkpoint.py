"""Checkpoints: atomic ``torch.save`` and safe loading (``weights_only=True``)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from emotion.atomic import write_bytes
from emotion.errors import DataError

FORMAT_VERSION = 1


def save(obj: dict[str, Any], path: Path) -> None:
    """Serialise ``obj`` (tensors, dicts, lists, primitives only) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing pickled code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: checkpoint not found; run `dvc repro train` first") from None
    except Exception as exc:  # corrupt or truncated file, or not a checkpoint
        raise DataError(f"{path}: not a readable checkpoint ({exc}); delete it and rerun") from None


def fingerprint(*parts: Any) -> str:
    """A stable digest of JSON-serialisable parts (config, data identity)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_digest(*paths: Path) -> str:
    """SHA-256 over the bytes of ``paths`` (identifies the data a run trained on)."""
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]
