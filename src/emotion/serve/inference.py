"""One image -> emotion probabilities: find the face, crop it, preprocess per contract, classify.

Which pixels are classified:

* the largest detected face, or with ``max_faces > 1`` the largest faces found in the frame and
  in overlapping tiles of it (group photos), each grown by the contract's ``face_margin`` into a
  square crop, all classified in one batch;
* no face, image a small square (<= 96 px, sides within 10%): the image is taken to be a face
  crop already (FER-style 48 px crops are), reported with ``face_detected: false`` and a note;
* no face otherwise: ``NoFaceError`` (HTTP 422), or the whole frame when ``face_fallback`` is on;
* detection off (server setting or ``?detect_face=false``):
  the whole frame.

``explain`` adds the occlusion saliency of the predicted class (:mod:`emotion.serve.saliency`)
over the classified box: the region of the upload the model saw, in the upload's pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from emotion.core.errors import DataError
from emotion.serve.faces import FaceLocator
from emotion.serve.images import DecodeGate, ImageLimits, decode_image
from emotion.serve.onnx_model import OnnxEmotionModel
from emotion.serve.saliency import OcclusionSaliency
from emotion.serve.settings import ServeSettings
from emotion.vision.facedetect import Face
from emotion.vision.tta import TestTimeAugmentation

SMALL_CROP_MAX_SIDE = 96


class NoFaceError(DataError):
    """Face detection found nothing and the policy says not to guess."""


@dataclass(frozen=True)
class FacePrediction:
    """One classified region: probabilities, the detected face (if any), a note, the saliency."""

    probabilities: dict[str, float]
    face: Face | None
    note: str | None = None
    saliency: dict[str, Any] | None = None

    @property
    def predicted_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.predicted_class]


@dataclass(frozen=True)
class Prediction:
    """Every classified face of one image, largest first, and the time they took."""

    faces: list[FacePrediction]
    processing_time: float

    @property
    def main(self) -> FacePrediction:
        """The largest face (the one answered at the top level of ``/predict``)."""
        return self.faces[0]


#: (face or None, note, box to classify in the frame's pixels)
Region = tuple[Face | None, str | None, tuple[int, ...]]


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
        self.limits = ImageLimits(settings.max_pixels, settings.max_side)
        self.gate = DecodeGate(settings.large_image_slots)

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> Predictor:
        model = OnnxEmotionModel(settings.model_dir, settings.variant)
        wants_faces = settings.detect_face
        return cls(model, FaceLocator(settings.face_model) if wants_faces else None, settings)

    @property
    def detects_faces(self) -> bool:
        return self.faces is not None

    def predict_bytes(
        self, data: bytes, detect_face: bool = True, explain: bool = False, max_faces: int = 1
    ) -> Prediction:
        """Decode untrusted bytes (``images.decode_image`` policy) and predict; boxes are in
        the uploaded image's pixels."""
        start = time.perf_counter()
        decoded = decode_image(data, self.limits, self.gate)
        return self.predict(decoded.image, detect_face, explain, max_faces, start, decoded.scale)

    def predict(
        self,
        image: Image.Image,
        detect_face: bool = True,
        explain: bool = False,
        max_faces: int = 1,
        start: float | None = None,
        scale: float = 1.0,
    ) -> Prediction:
        """Probabilities for up to ``max_faces`` faces of a decoded RGB image, largest first (see
        the module docstring); with ``explain``, also the occlusion saliency of each predicted
        class over its crop. Boxes are in ``image``'s pixels times ``scale``."""
        start = time.perf_counter() if start is None else start
        regions = self._regions(image, detect_face, max_faces)
        prep = self.model.contract.preprocessing
        grays = np.stack([prep.image_to_gray(image.crop(box)) for _, _, box in regions])
        probs = self.probabilities(grays)
        full = (round(image.width * scale), round(image.height * scale))
        faces = []
        for (face, note, box), gray, p in zip(regions, grays, probs, strict=True):
            if face is not None and scale != 1.0:
                face = face.rescaled(scale, scale, *full)
            saliency = self._explain(gray, p, box, scale) if explain else None
            named = dict(zip(self.model.classes, map(float, p), strict=True))
            faces.append(FacePrediction(named, face, note, saliency))
        return Prediction(faces, time.perf_counter() - start)

    def _explain(
        self, gray: np.ndarray, probs: np.ndarray, box: tuple[int, ...], scale: float
    ) -> dict[str, Any]:
        left, top, right, bottom = box
        # in the upload's pixels; sides scaled as sides, so a square stays square
        region = {
            "x": round(left * scale),
            "y": round(top * scale),
            "width": round((right - left) * scale),
            "height": round((bottom - top) * scale),
        }
        target = int(probs.argmax())
        return self.saliency.explain(gray, target, float(probs[target]), self.probabilities, region)

    def probabilities(self, grays: np.ndarray) -> np.ndarray:
        """uint8 (N, S, S) stored-size faces -> (N, classes) served probabilities."""
        return self.model.probabilities(self.model.contract.preprocessing.views(grays, self.tta))

    def _regions(self, image: Image.Image, detect_face: bool, max_faces: int) -> list[Region]:
        """The regions of ``image`` to classify: up to ``max_faces`` detected faces, largest
        first, or the whole frame where the policy allows."""
        whole = (0, 0, *image.size)
        if self.faces is None or not detect_face:
            return [(None, "face detection off: classified the whole image", whole)]
        found = self.faces.find(image, tiled=max_faces > 1)[:max_faces]
        if found:
            margin = self.model.contract.preprocessing.face_margin
            return [(face, None, face.crop_box(margin, *image.size)) for face in found]
        if is_small_square(image):
            note = (
                f"no face detected; a square image of at most {SMALL_CROP_MAX_SIDE} px is "
                "taken to be a face crop already"
            )
            return [(None, note, whole)]
        if self.settings.face_fallback:
            return [(None, "no face detected: classified the whole image", whole)]
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
