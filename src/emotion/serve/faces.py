"""The faces to classify: BlazeFace detections on a bounded view of the frame, thread-safe."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image

from emotion.serve.images import WORK_SIDE
from emotion.vision.facedetect import Face, FaceDetector

#: BlazeFace (short range) looks at a 128x128 view of the frame; smaller images are upscaled to it.
DETECTOR_SIDE = 128
#: The detector never sees a longer side than this (the decoded frame's bound,
#: ``images.WORK_SIDE``): larger frames (video) are downscaled, and upscaling stops here (a
#: 4000x20 strip is not worth 40M pixels; OpenCV inside mediapipe fails at 32,767 px).
MAX_DETECTOR_SIDE = WORK_SIDE


def detection_scale(width: int, height: int) -> float:
    """Resize factor before detection: shorter side up to 128 px, longer side at most 2048 px."""
    up = max(1.0, DETECTOR_SIDE / min(width, height))
    return min(up, MAX_DETECTOR_SIDE / max(width, height))


def detection_size(width: int, height: int) -> tuple[int, int]:
    """The size the detector sees a ``width`` x ``height`` frame at (each side >= 1 px)."""
    scale = detection_scale(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


#: Smallest tile worth a detector call: smaller faces are below what a 48 px model can read.
MIN_TILE = 192


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square tiles (left, top, right, bottom) at half the shorter side and at the
    shorter side, each stepping by half its size, down to ``MIN_TILE`` px."""
    boxes = []
    side = min(width, height)
    for tile in {side, side // 2}:
        if tile < MIN_TILE or (tile == side and width == height):
            continue
        step = tile // 2
        xs = sorted({*range(0, width - tile + 1, step), width - tile})
        ys = sorted({*range(0, height - tile + 1, step), height - tile})
        boxes += [(x, y, x + tile, y + tile) for y in ys for x in xs]
    return boxes


def _overlap(a: Face, b: Face) -> float:
    """Intersection over the smaller box's area (1.0: one box lies inside the other)."""
    w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    return max(0, w) * max(0, h) / max(1, min(a.area, b.area))


def merge(faces: list[Face], threshold: float = 0.5, kept: list[Face] | None = None) -> list[Face]:
    """One box per face: ``kept`` (boxes already chosen, e.g. from the whole frame, so a face
    found there keeps that box) plus the highest-scoring of ``faces`` that overlap no chosen box
    by more than ``threshold`` of the smaller one (a face seen in two tiles or cut at an edge)."""
    kept = list(kept or [])
    for face in sorted(faces, key=lambda f: -f.score):
        if all(_overlap(face, other) <= threshold for other in kept):
            kept.append(face)
    return kept


class FaceLocator:
    """Finds the faces in an image; one mediapipe detector behind a lock."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.5) -> None:
        self._detector = FaceDetector(model_path, min_confidence)
        self._lock = threading.Lock()
        self.model_path = Path(model_path)

    def find(self, image: Image.Image, tiled: bool = False) -> list[Face]:
        """Faces in ``image`` (pixel boxes in ``image``), largest first.

        BlazeFace (short range) sees the frame at 128 px, so faces under about a tenth of the
        frame are missed. ``tiled`` also looks at overlapping square tiles (:func:`tiles`) and
        merges what they find, for group photos and wide frames (several detector calls).
        """
        faces = merge(self._detect(image, (0, 0)))
        if tiled:
            found = [
                f for box in tiles(*image.size) for f in self._detect(image.crop(box), box[:2])
            ]
            faces = merge(found, kept=faces)
        return sorted(faces, key=lambda f: -f.area)

    def _detect(self, image: Image.Image, offset: tuple[int, int]) -> list[Face]:
        width, height = image.size
        size = detection_size(width, height)
        probe = image if size == image.size else image.resize(size, Image.Resampling.BILINEAR)
        with self._lock:
            faces = self._detector.detect(probe)
        sx, sy = width / size[0], height / size[1]
        return [
            Face(round(f.x * sx) + offset[0], round(f.y * sy) + offset[1],
                 max(1, round(f.width * sx)), max(1, round(f.height * sy)), f.score)
            for f in faces
        ]  # fmt: skip

    def close(self) -> None:
        self._detector.close()
