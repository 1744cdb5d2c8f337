"""JSON bodies of the API (they also document it at ``/docs``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FaceBox(BaseModel):
    """The detected face in pixels of the uploaded image (after EXIF orientation)."""

    x: int
    y: int
    width: int
    height: int
    score: float


class Saliency(BaseModel):
    """Occlusion sensitivity of the predicted class over the region the model classified."""

    method: str
    png: str = Field(description="base64 grayscale PNG, size x size; brighter = more salient")
    box: dict[str, int] = Field(
        description="the region the model saw, in pixels of the upload: the face box grown by"
        " the model's face margin into a square (or the whole image), resized to size x size"
    )
    size: int = Field(description="side of the face the model saw, in its pixels")
    grid: int = Field(description="the map's real resolution: grid x grid cells of the face")
    cell: int = Field(description="side of one cell in the face's pixels (grid * cell = size)")
    patch: int
    stride: int
    evaluations: int = Field(description="model inputs evaluated (occluded copies + original)")
    max_probability_drop: float = Field(description="the map's 255: largest mean drop")
    seconds: float


class FaceResult(BaseModel):
    """One classified face (or the whole image, when no face was used)."""

    predictions: dict[str, float] = Field(description="probability per class, summing to 1")
    predicted_class: str
    confidence: float
    face_box: FaceBox | None = None
    note: str | None = Field(None, description="why the whole image was classified, if it was")
    saliency: Saliency | None = Field(None, description="with ?explain=true")

    @classmethod
    def of(cls, face: Any) -> FaceResult:
        """From an ``inference.FacePrediction``."""
        return cls(
            predictions=face.probabilities,
            predicted_class=face.predicted_class,
            confidence=face.confidence,
            face_box=FaceBox(**face.face.as_dict()) if face.face else None,
            note=face.note,
            saliency=Saliency(**face.saliency) if face.saliency else None,
        )


class PredictResponse(FaceResult):
    """The largest face at the top level; with ``?all_faces=true`` every face in ``faces``."""

    processing_time: float = Field(description="seconds spent decoding, detecting, classifying")
    face_detected: bool
    faces: list[FaceResult] | None = Field(
        None, description="with ?all_faces=true: every face, largest first (at most --max-faces)"
    )


class ErrorResponse(BaseModel):
    detail: str = Field(description="what is wrong with the request and what to do")


class HealthResponse(BaseModel):
    status: str
    variant: str
    face_detection: bool


class MetadataResponse(BaseModel):
    labels: list[str]
    variant: str
    model_file: str
    sha256: str
    available_variants: list[str]
    opset: int
    input: dict[str, Any]
    output: dict[str, Any]
    preprocessing: dict[str, Any]
    tta: dict[str, Any] = Field(description="test-time augmentation the server applies")
    contract_tta: dict[str, Any] = Field(description="the model contract's (as evaluated)")
    source: dict[str, Any]
    providers: list[str]
    face_detection: dict[str, Any]
    limits: dict[str, int]
