"""One output record per face (or per input without one), written as JSON lines or CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from emotion.serve.inference import Prediction

BOX = ("x", "y", "width", "height", "score")


@dataclass
class Record:
    """Where a face came from (file, video frame and time), its box and probabilities; or why
    there is none (``note``) or what failed (``error``)."""

    source: str
    frame: int | None = None
    time: float | None = None
    face: int | None = None
    box: dict[str, float] | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    error: str | None = None

    @property
    def predicted_class(self) -> str | None:
        if not self.probabilities:
            return None
        return max(self.probabilities, key=self.probabilities.__getitem__)

    def to_dict(self) -> dict[str, Any]:
        top = self.predicted_class
        return {
            "source": self.source,
            "frame": self.frame,
            "time": self.time,
            "face": self.face,
            "box": self.box,
            "predicted_class": top,
            "confidence": round(self.probabilities[top], 6) if top else None,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "note": self.note,
            "error": self.error,
        }


def face_records(
    source: str, prediction: Prediction, frame: int | None = None, time: float | None = None
) -> Iterator[Record]:
    """A record per classified face of ``prediction``, numbered from 0, largest first."""
    for k, face in enumerate(prediction.faces):
        box = face.face.as_dict() if face.face else None
        yield Record(source, frame, time, k, box, face.probabilities, face.note)


class Writer:
    """Writes records to ``out`` as JSON lines, or CSV with a column per class."""

    def __init__(self, out: IO[str], fmt: str, classes: tuple[str, ...]) -> None:
        self.out, self.fmt, self.classes = out, fmt, classes
        columns = ["source", "frame", "time", "face", *BOX, "predicted_class", "confidence"]
        self.columns = [*columns, *classes, "note", "error"]
        self._csv = csv.DictWriter(out, self.columns) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()

    def write(self, record: Record) -> None:
        row = record.to_dict()
        if self._csv is None:
            self.out.write(json.dumps(row) + "\n")
            return
        flat = {k: row[k] for k in self.columns if k in row}
        flat |= row["box"] or {}
        flat |= row["probabilities"]
        self._csv.writerow(flat)
