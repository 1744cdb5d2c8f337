"""The faces to classify: BlazeFace detections on a bounded view of the frame, thread-safe."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image

from emotion.core.facedetect import Face, FaceDetector

#: BlazeFace (short range) looks at a 128x128 view of the frame; smaller images are upscaled to it.
DETECTOR_SIDE = 128
#: The detector never sees a longer side than this: larger frames are downscaled, and upscaling
#: stops here (a 4000x20 strip is not worth 25M pixels; OpenCV inside mediapipe fails on sides
#: of 32,767 px and more).
MAX_DETECTOR_SIDE = 1024


def detection_scale(width: int, height: int) -> float:
    """Resize factor before detection: shorter side up to 128 px, longer side at most 1024 px."""
    up = max(1.0, DETECTOR_SIDE / min(width, height))
    return min(up, MAX_DETECTOR_SIDE / max(width, height))


def detection_size(width: int, height: int) -> tuple[int, int]:
    """The size the detector sees a ``width`` x ``height`` frame at (each side >= 1 px)."""
    scale = detection_scale(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class FaceLocator:
    """Finds the faces in an image; one mediapipe detector behind a lock."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.5) -> None:
        self._detector = FaceDetector(model_path, min_confidence)
        self._lock = threading.Lock()
        self.model_path = Path(model_path)

    def find(self, image: Image.Image) -> list[Face]:
        """Every face in ``image`` (pixel boxes in ``image``), largest first."""
        width, height = image.size
        size = detection_size(width, height)
        probe = image if size == image.size else image.resize(size, Image.Resampling.BILINEAR)
        with self._lock:
            faces = self._detector.detect(probe)
        if size != image.size:
            faces = [f.rescaled(width / size[0], height / size[1], width, height) for f in faces]
        return sorted(faces, key=lambda f: -f.area)

    def close(self) -> None:
        self._detector.close()
