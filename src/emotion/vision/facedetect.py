"""Face detection with mediapipe's Tasks ``FaceDetector`` (BlazeFace, short range).

mediapipe 1.2 ships no model files: the DVC stage ``assets`` fetches the short-range BlazeFace
model (:mod:`emotion.assets.model_files`). Google's
``blaze_face_short_range.tflite`` works the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
from PIL import Image

from emotion.core.errors import DataError

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO lines are noise here


@dataclass(frozen=True)
class Face:
    """A detected face: pixel box (x, y, width, height) and detector score."""

    x: int
    y: int
    width: int
    height: int
    score: float

    @property
    def area(self) -> int:
        return self.width * self.height

    def crop_box(self, margin: float, image_width: int, image_height: int) -> tuple[int, ...]:
        """A square box around the face grown by ``margin`` per side (left, top, right, bottom).

        Near an edge the square slides inward rather than being cut, so crops keep the face's
        aspect ratio; only a square larger than the image is clipped.
        """
        side = round(max(self.width, self.height) * (1.0 + 2.0 * margin))
        side = max(1, min(side, image_width, image_height))
        cx, cy = self.x + self.width / 2.0, self.y + self.height / 2.0
        left = min(max(0, round(cx - side / 2.0)), image_width - side)
        top = min(max(0, round(cy - side / 2.0)), image_height - side)
        return left, top, left + side, top + side

    def rescaled(self, sx: float, sy: float, image_width: int, image_height: int) -> Face:
        """This box with x scaled by ``sx`` and y by ``sy``, kept inside the image."""
        x = min(round(self.x * sx), image_width - 1)
        y = min(round(self.y * sy), image_height - 1)
        width = max(1, min(round(self.width * sx), image_width - x))
        height = max(1, min(round(self.height * sy), image_height - y))
        return Face(x, y, width, height, self.score)

    def as_dict(self) -> dict[str, float]:
        return {
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "score": round(self.score, 4),
        }


def _rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """Contiguous uint8 RGB (the detector's input is 3-channel even for grayscale pictures)."""
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


class FaceDetector:
    """BlazeFace via mediapipe Tasks; a context manager (mediapipe needs an explicit close)."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.5):
        path = Path(model_path)
        if not path.is_file():
            raise DataError(
                f"{path}: face detector model not found; run `dvc repro assets` (or"
                " `dvc pull assets`), or point the setting at a BlazeFace .tflite file"
            )
        import mediapipe as mp  # heavy import: only where detection is used
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            min_detection_confidence=min_confidence,
        )
        self._detector = vision.FaceDetector.create_from_options(options)
        self.model_path = path
        self.min_confidence = min_confidence

    def detect(self, image: Image.Image | np.ndarray) -> list[Face]:
        """Faces in a grayscale/RGB image, highest score first."""
        rgb = _rgb_array(image)
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        faces = []
        for det in self._detector.detect(frame).detections:
            box = det.bounding_box
            x, y = max(0, box.origin_x), max(0, box.origin_y)
            w = min(box.width, rgb.shape[1] - x)
            h = min(box.height, rgb.shape[0] - y)
            if w > 0 and h > 0:
                faces.append(Face(x, y, w, h, float(det.categories[0].score)))
        return sorted(faces, key=lambda f: -f.score)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
