"""The face to classify: the largest BlazeFace detection, safe to call from many threads."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image

from emotion.core.facedetect import Face, FaceDetector

#: BlazeFace (short range) looks at a 128x128 view of the frame; smaller images are upscaled to it.
DETECTOR_SIDE = 128
#: Upscaling never makes the longer side exceed this (a 4000x20 strip is not worth 25M pixels).
MAX_UPSCALED_SIDE = 1024


def detection_scale(width: int, height: int) -> float:
    """Upscale factor before detection: shorter side to 128 px, longer side at most 1024 px."""
    scale = min(DETECTOR_SIDE / min(width, height), MAX_UPSCALED_SIDE / max(width, height))
    return max(1.0, scale)


class FaceLocator:
    """Finds the largest face in an image; one mediapipe detector behind a lock."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.5) -> None:
        self._detector = FaceDetector(model_path, min_confidence)
        self._lock = threading.Lock()
        self.model_path = Path(model_path)

    def largest(self, image: Image.Image) -> Face | None:
        """The largest face in ``image`` (pixel box in ``image``), or None."""
        width, height = image.size
        scale = detection_scale(width, height)
        probe = image
        if scale > 1.0:
            size = (round(width * scale), round(height * scale))
            probe = image.resize(size, Image.Resampling.BILINEAR)
        with self._lock:
            faces = self._detector.detect(probe)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.area)
        if scale == 1.0:
            return face
        x, y = round(face.x / scale), round(face.y / scale)
        return Face(
            x,
            y,
            min(round(face.width / scale), width - x),
            min(round(face.height / scale), height - y),
            face.score,
        )

    def close(self) -> None:
        self._detector.close()
