"""One image -> emotion probabilities: find the face, crop it, preprocess per contract, classify.

Which pixels are classified:

* the largest detected face, grown by the contract's ``face_margin`` into a square crop;
* no face, image a small square (<= 96 px, sides within 10%): the image is taken to be a face
  crop already (FER-style 48 px crops are), reported with ``face_detected: false`` and a note;
* no face otherwise: ``NoFaceError`` (HTTP 422), or the whole frame when ``face_fallback`` is on;
* detection off (server setting or ``?detect_face=false``):
  the whole frame.

``explain`` adds the occlusion saliency of the predicted class (:mod:`emotion.serve.saliency`)
over the classified box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from emotion.core.errors import DataError
from emotion.core.facedetect import Face
from emotion.core.tta import TestTimeAugmentation
from emotion.serve.faces import FaceLocator
from emotion.serve.images import decode_image
from emotion.serve.onnx_model import OnnxEmotionModel
from emotion.serve.saliency import OcclusionSaliency
from emotion.serve.settings import ServeSettings

SMALL_CROP_MAX_SIDE = 96


class NoFaceError(DataError):
    """Face detection found nothing and the policy says not to guess."""


@dataclass(frozen=True)
class Prediction:
    probabilities: dict[str, float]
    face: Face | None
    processing_time: float
    note: str | None = None
    saliency: dict[str, Any] | None = None

    @property
    def predicted_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.predicted_class]


def is_small_square(image: Image.Image) -> bool:
    """Whether ``image`` looks like a ready-made face crop: small and (nearly) square."""
    width, height = image.size
    side = max(width, height)
    return side <= SMALL_CROP_MAX_SIDE and abs(width - height) <= side // 10


class Predictor:
    """The serving pipeline; thread-safe, and a context manager (it owns the face detector)."""

    def __init__(self, model: OnnxEmotionModel, faces: FaceLocator | None, settings: ServeSettings):
        self.model = model
        self.faces = faces
        self.settings = settings
        tta = model.contract.tta
        #: the contract's test-time augmentation, or the mode the server was started with
        self.tta = tta if settings.tta is None else TestTimeAugmentation(settings.tta, tta.crop)
        self.saliency = OcclusionSaliency()

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> Predictor:
        model = OnnxEmotionModel(settings.model_dir, settings.variant)
        wants_faces = settings.detect_face
        return cls(model, FaceLocator(settings.face_model) if wants_faces else None, settings)

    @property
    def detects_faces(self) -> bool:
        return self.faces is not None

    def predict_bytes(
        self, data: bytes, detect_face: bool = True, explain: bool = False
    ) -> Prediction:
        """Decode untrusted bytes (``images.decode_image`` policy) and predict."""
        start = time.perf_counter()
        image = decode_image(data, self.settings.max_pixels)
        return self.predict(image, detect_face, explain, start)

    def predict(
        self,
        image: Image.Image,
        detect_face: bool = True,
        explain: bool = False,
        start: float | None = None,
    ) -> Prediction:
        """Probabilities for the face in a decoded RGB image (see the module docstring); with
        ``explain``, also the occlusion saliency of the predicted class over the crop."""
        start = time.perf_counter() if start is None else start
        face, note, box = self._region(image, detect_face)
        prep = self.model.contract.preprocessing
        gray = prep.image_to_gray(image.crop(box))
        probs = self.probabilities(gray[None])[0]
        saliency = None
        if explain:
            x, y, right, bottom = box
            region = {"x": x, "y": y, "width": right - x, "height": bottom - y}
            target = int(probs.argmax())
            saliency = self.saliency.explain(
                gray, target, float(probs[target]), self.probabilities, region
            )
        return Prediction(
            probabilities=dict(zip(self.model.classes, map(float, probs), strict=True)),
            face=face,
            processing_time=time.perf_counter() - start,
            note=note,
            saliency=saliency,
        )

    def probabilities(self, grays: np.ndarray) -> np.ndarray:
        """uint8 (N, S, S) stored-size faces -> (N, classes) served probabilities."""
        return self.model.probabilities(self.model.contract.preprocessing.views(grays, self.tta))

    def _region(
        self, image: Image.Image, detect_face: bool
    ) -> tuple[Face | None, str | None, tuple[int, ...]]:
        """The face (if any), a note and the box of ``image`` to classify."""
        whole = (0, 0, *image.size)
        if self.faces is None or not detect_face:
            return None, "face detection off: classified the whole image", whole
        face = self.faces.largest(image)
        if face is not None:
            margin = self.model.contract.preprocessing.face_margin
            return face, None, face.crop_box(margin, *image.size)
        if is_small_square(image):
            note = (
                f"no face detected; a square image of at most {SMALL_CROP_MAX_SIDE} px is "
                "taken to be a face crop already"
            )
            return None, note, whole
        if self.settings.face_fallback:
            return None, "no face detected: classified the whole image", whole
        raise NoFaceError(
            "no face found in the image; send a closer, frontal, well-lit photo of one "
            "face, or add ?detect_face=false to classify the whole image"
        )

    def close(self) -> None:
        if self.faces is not None:
            self.faces.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
