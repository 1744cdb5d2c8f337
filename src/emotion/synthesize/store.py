"""The generation cache: one record (+ face crop) per slot, kept across runs for resume.

It lives in the scratch folder (:mod:`emotion.core.scratch`), one folder per generation settings and
stage code, outside DVC's outputs; a record's ``image`` is relative to that folder.

A slot's record is valid only for the exact generation settings it was made with (its ``key``),
so a rerun reuses what it can and regenerates the rest. The JSON record is written last and
atomically: its presence means the slot is complete, whatever happened to the process after.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from emotion.core.atomic import write_bytes, write_json
from emotion.core.hashing import sha256_bytes


@dataclass(frozen=True)
class SlotRecord:
    """A generated candidate: provenance, QC measurements and its stored crop (if any)."""

    data: dict[str, Any]

    @property
    def slot_id(self) -> str:
        return self.data["slot_id"]


class SlotStore:
    """Slot records under ``root/<class>/<index>.json`` with the face crop as ``.png``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _json(self, label: str, index: int) -> Path:
        return self.root / label / f"{index:06d}.json"

    def image_path(self, label: str, index: int) -> Path:
        return self.root / label / f"{index:06d}.png"

    def get(self, label: str, index: int, key: str) -> SlotRecord | None:
        """The stored record if it was made with settings ``key``."""
        path = self._json(label, index)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if data.get("key") != key:
            return None
        if data.get("image") and not self.image_path(label, index).is_file():
            return None
        return SlotRecord(data)

    def put(
        self, label: str, index: int, data: dict[str, Any], crop: np.ndarray | None
    ) -> dict[str, Any]:
        """Store a slot's record (and crop); returns the record as stored."""
        if crop is not None:
            buf = _png(crop)
            write_bytes(self.image_path(label, index), buf)
            data = {
                **data,
                "image": self.image_path(label, index).relative_to(self.root).as_posix(),
            }
            data["image_sha256"] = sha256_bytes(buf)
        else:
            data = {**data, "image": None, "image_sha256": None}
        write_json(self._json(label, index), data)
        return data


def _png(gray: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gray, "L").save(buf, format="PNG", optimize=False)
    return buf.getvalue()
