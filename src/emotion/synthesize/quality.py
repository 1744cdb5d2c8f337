"""Quality control of generated images: one big-enough face, sharp, cropped to the training size.

Raw measurements (every face above a low score floor, the Laplacian variance of the face region)
are stored per image, and accept/reject decisions are taken from them later, so changing a QC
threshold never requires generating again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from emotion.vision.facedetect import Face, FaceDetector

#: Detector floor for the stored face scores; thresholds below it cannot be applied later.
FACE_SCORE_FLOOR = 0.2


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian on 0-255 gray levels (OpenCV's ``ksize=1``)."""
    return float(ndimage.laplace(np.asarray(gray, dtype=np.float64), mode="reflect").var())


@dataclass(frozen=True)
class Measurement:
    """QC measurements of one generated image (faces best first)."""

    faces: tuple[Face, ...]
    image_size: tuple[int, int]
    sharpness: float  # of the face crop region, or of the whole image without a face

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Measurement:
        faces = tuple(Face(**f) for f in record["faces"])
        return cls(faces, tuple(record["generated_size"]), float(record["sharpness"]))

    def to_record(self) -> dict[str, Any]:
        return {
            "faces": [f.as_dict() for f in self.faces],
            "generated_size": list(self.image_size),
            "sharpness": round(self.sharpness, 4),
        }


def measure(image: Image.Image, detector: FaceDetector, margin: float) -> Measurement:
    """Detect faces; measure sharpness where the face crop will be taken."""
    faces = tuple(detector.detect(image))
    gray = image.convert("L")
    region = gray.crop(faces[0].crop_box(margin, *image.size)) if faces else gray
    return Measurement(faces, image.size, laplacian_variance(np.asarray(region)))


def face_crop(image: Image.Image, face: Face, margin: float, size: int) -> np.ndarray:
    """The face grown by ``margin`` per side, square, grayscale, resized to ``size`` (uint8)."""
    box = face.crop_box(margin, *image.size)
    crop = image.convert("L").crop(box)
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def rejection_reason(
    m: Measurement, min_confidence: float, min_face_size: float, min_sharpness: float
) -> str | None:
    """Why an image fails the per-image checks (``None``: it passes them).

    Exactly one face must score ``min_confidence``; its box side must be at least
    ``min_face_size`` of the image's shorter side (detectors find tiny "faces" in noise and
    background crowds); the face region must be sharp enough.
    """
    confident: Sequence[Face] = [f for f in m.faces if f.score >= min_confidence]
    if not confident:
        return "no_face"
    if len(confident) > 1:
        return "multiple_faces"
    if max(confident[0].width, confident[0].height) < min_face_size * min(m.image_size):
        return "small_face"
    if m.sharpness < min_sharpness:
        return "blurry"
    return None
