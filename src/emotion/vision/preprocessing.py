"""The preprocessing contract: how a grayscale face crop becomes the model's input tensor.

One definition, written by the train stage into the checkpoint, exported into ``model.json`` and
followed by every consumer: the training data path (torch, :mod:`emotion.training.tensordata`),
the export stage, the server and third-party clients (numpy + Pillow, below). Two resizes:

1. face crop -> ``source_size`` with Lanczos, exactly how the balance stage stored the training
   images (skipped when the crop already has that size);
2. ``source_size`` -> ``image_size`` with antialiased bilinear interpolation on [0, 1] floats,
   exactly what training applies on the device (``torch.nn.functional.interpolate``).

Test-time augmentation (:mod:`emotion.vision.tta`) classifies several views of the stored-size
image: :meth:`PreprocessingContract.views`.

Deliberately free of torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from emotion.core.errors import DataError

if TYPE_CHECKING:  # annotations only: stages that import this module do not depend on it
    from emotion.vision.tta import TestTimeAugmentation


def square_gray(image: Image.Image, size: int | None) -> Image.Image:
    """Grayscale, resized to ``size`` x ``size`` with Lanczos (``None``: kept as it is).

    The balance stage stores training images this way; serving applies it to face crops.
    """
    gray = image.convert("L")
    if size is not None and gray.size != (size, size):
        gray = gray.resize((size, size), Image.Resampling.LANCZOS)
    return gray


@dataclass(frozen=True)
class PreprocessingContract:
    """Image -> model input: grayscale, two resizes, [0, 1] scaling, normalisation, channels."""

    source_size: int
    image_size: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    face_margin: float | None  #: box margin of the face crop (set by the export stage)

    SOURCE_RESAMPLE: ClassVar[str] = "lanczos"
    RESAMPLE: ClassVar[str] = "bilinear-antialias"
    SCALE: ClassVar[float] = 1.0 / 255.0
    FACE_CROP: ClassVar[bool] = True  #: the model expects a face crop, not a whole photo

    def with_face_margin(self, margin: float) -> PreprocessingContract:
        return replace(self, face_margin=margin)

    @classmethod
    def fixed(cls) -> dict[str, Any]:
        """What this version always applies; recorded with the contract, checked on reading."""
        return {
            "grayscale": True,
            "face_crop": cls.FACE_CROP,
            "source_resample": cls.SOURCE_RESAMPLE,
            "resample": cls.RESAMPLE,
            "scale": cls.SCALE,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std), **self.fixed()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str) -> PreprocessingContract:
        """Parse a contract written by :meth:`to_dict`; ``origin`` names the file in errors."""
        fixed = cls.fixed()
        wrong = {k: data.get(k) for k, v in fixed.items() if data.get(k) != v}
        if wrong:
            raise DataError(
                f"{origin}: preprocessing {wrong} is not what this version applies ({fixed});"
                " retrain or re-export with this version (`dvc repro`)"
            )
        try:
            return cls(
                source_size=int(data["source_size"]),
                image_size=int(data["image_size"]),
                in_chans=int(data["in_chans"]),
                mean=tuple(float(v) for v in data["mean"]),
                std=tuple(float(v) for v in data["std"]),
                face_margin=None if data["face_margin"] is None else float(data["face_margin"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{origin}: malformed preprocessing contract ({exc!r})") from None

    def image_to_gray(self, image: Image.Image) -> np.ndarray:
        """A decoded face crop as uint8 grayscale at ``source_size``, as the training data is."""
        return np.asarray(square_gray(image, self.source_size), dtype=np.uint8)

    def batch(self, grays: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """uint8 (N, H, W) grayscale -> float32 (N, in_chans, image_size, image_size) input."""
        x = np.asarray(grays, dtype=np.float32) * np.float32(self.SCALE)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = np.stack([self._resize_float(g) for g in x])
        x = x[:, None]
        x = np.repeat(x, self.in_chans, axis=1) if self.in_chans > 1 else x
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray((x - mean) / std, dtype=np.float32)

    def views(
        self, grays: Sequence[np.ndarray] | np.ndarray, tta: TestTimeAugmentation
    ) -> np.ndarray:
        """uint8 (N, S, S) at ``source_size`` -> float32 (N, views, in_chans, size, size)."""
        grays = np.asarray(grays, dtype=np.uint8)
        crops = []
        for top, left, side in tta.boxes(grays.shape[-1]):
            crop = grays[:, top : top + side, left : left + side]
            crops.append(crop)
            if tta.mirrored:
                crops.append(crop[:, :, ::-1])
        return np.stack([self.batch(c) for c in crops], axis=1)

    def _resize_float(self, gray: np.ndarray) -> np.ndarray:
        # Pillow's bilinear filter on a float image widens its support when it shrinks, which is
        # torch's ``antialias=True``; upscaling is plain bilinear with half-pixel centres in both.
        size = (self.image_size, self.image_size)
        image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32), mode="F")
        return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
