"""Run the serving pipeline over many inputs: every face of every image and sampled frame.

Each input is read and classified on its own: an unreadable file, a video OpenCV cannot open or
an image without a face becomes a record saying so (and a line on stderr for failures), and the
rest of the batch still runs. The same :class:`~emotion.serve.inference.Predictor` as
``emotion serve`` does the work, so a file gets the same answer from both.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tqdm import tqdm

from emotion.core.errors import DataError
from emotion.predict.inputs import Inputs, collect, video_frame_count, video_frames
from emotion.predict.records import Record, Writer, face_records
from emotion.serve.inference import NoFaceError, Prediction, Predictor
from emotion.serve.settings import ServeSettings


@dataclass
class Summary:
    """What a batch read and found."""

    images: int = 0
    frames: int = 0
    faces: int = 0
    without_face: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    per_class: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def text(self) -> str:
        rate = (self.images + self.frames) / self.seconds if self.seconds else 0.0
        classes = ", ".join(f"{c} {n}" for c, n in self.per_class.most_common()) or "none"
        lines = [
            f"{self.images} image(s) and {self.frames} video frame(s) in {self.seconds:.1f} s"
            f" ({rate:.1f}/s): {self.faces} face(s); {self.without_face} without a face",
            f"top classes: {classes}",
        ]
        if self.skipped:
            lines.append(f"skipped {self.skipped} file(s) in folders that are not images or videos")
        if self.failed:
            lines.append(f"{len(self.failed)} input(s) failed: {', '.join(self.failed[:5])}")
        return "\n".join(lines)


class Batch:
    """Classifies inputs with ``predictor`` and writes one record per face to ``writer``."""

    def __init__(self, predictor: Predictor, writer: Writer, fps: float, max_faces: int) -> None:
        self.predictor, self.writer = predictor, writer
        self.fps, self.max_faces = fps, max_faces
        self.summary = Summary()

    def run(self, inputs: Inputs) -> Summary:
        """Every image, then every video; a progress bar on stderr where it is a terminal."""
        start = time.perf_counter()
        self.summary.skipped = inputs.skipped
        total = len(inputs.images) + sum(video_frame_count(v, self.fps) or 1 for v in inputs.videos)
        with tqdm(total=total, unit="img", file=sys.stderr, disable=None, leave=False) as bar:
            for path in inputs.images:
                self._image(path)
                bar.update()
            for path in inputs.videos:
                self._video(path, bar)
        self.summary.seconds = time.perf_counter() - start
        return self.summary

    def _image(self, path: Path) -> None:
        self.summary.images += 1
        try:
            prediction = self.predictor.predict_bytes(path.read_bytes(), max_faces=self.max_faces)
        except NoFaceError:
            self._no_face(Record(str(path)))
        except (DataError, OSError) as exc:
            self._failed(Record(str(path)), exc)
        else:
            self._write(str(path), prediction)

    def _video(self, path: Path, bar: tqdm) -> None:
        try:
            for frame in video_frames(path, self.fps):
                self.summary.frames += 1
                bar.update()
                try:
                    prediction = self.predictor.predict(frame.image, max_faces=self.max_faces)
                except NoFaceError:
                    self._no_face(Record(str(path), frame.index, frame.time))
                else:
                    self._write(str(path), prediction, frame.index, frame.time)
        except DataError as exc:
            self._failed(Record(str(path)), exc)

    def _write(
        self, source: str, prediction: Prediction, frame: int | None = None, t: float | None = None
    ) -> None:
        for record in face_records(source, prediction, frame, t):
            self.summary.faces += record.box is not None
            self.summary.per_class[record.predicted_class] += 1
            self.writer.write(record)

    def _no_face(self, record: Record) -> None:
        self.summary.without_face += 1
        record.note = "no face found"
        self.writer.write(record)

    def _failed(self, record: Record, exc: Exception) -> None:
        text = str(exc)
        record.error = text if text.startswith(record.source) else f"{record.source}: {text}"
        self.summary.failed.append(record.source)
        print(f"error: {record.error}", file=sys.stderr)
        self.writer.write(record)


def predict_paths(
    paths: list[Path],
    settings: ServeSettings,
    *,
    fmt: str = "jsonl",
    out: Path | None = None,
    fps: float = 1.0,
    max_faces: int = 10,
) -> Summary:
    """Every face in ``paths`` (files, folders, videos) with the served pipeline of ``settings``,
    written to ``out`` (stdout if None) as JSON lines or CSV."""
    inputs = collect(paths)
    stream: IO[str]
    opened = out.open("w", encoding="utf-8", newline="") if out else nullcontext(sys.stdout)
    with Predictor.from_settings(settings) as predictor, opened as stream:
        writer = Writer(stream, fmt, predictor.model.classes)
        return Batch(predictor, writer, fps, max_faces).run(inputs)
