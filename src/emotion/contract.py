"""The exported model's contract (``model.json``): what any client needs to use the ONNX model.

Deliberately free of torch: a server or a third-party client needs only numpy, Pillow and
onnxruntime. The same dictionary is embedded in the ONNX file's ``metadata_props``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from emotion.atomic import write_json
from emotion.errors import DataError

CONTRACT_FILE = "model.json"
FORMAT = "emotion-onnx"
FORMAT_VERSION = 1
METADATA_KEY = "emotion_contract"


@dataclass(frozen=True)
class Preprocessing:
    """Image -> model input: grayscale, square resize, [0, 1] scaling, normalisation, channels."""

    image_size: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = "bilinear"
    scale: float = 1.0 / 255.0
    face_crop: bool = True
    face_margin: float = 0.25

    def image_to_gray(self, image: Image.Image) -> np.ndarray:
        """A decoded image as a uint8 (size, size) grayscale array, resized as in training."""
        gray = image.convert("L")
        if gray.size != (self.image_size, self.image_size):
            gray = gray.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.uint8)

    def batch(self, grays: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """uint8 (N, size, size) grayscale -> float32 (N, in_chans, size, size) model input."""
        x = np.asarray(grays, dtype=np.float32)[:, None] * np.float32(self.scale)
        x = np.repeat(x, self.in_chans, axis=1) if self.in_chans > 1 else x
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


@dataclass(frozen=True)
class ModelContract:
    """Classes, tensor names and preprocessing of an exported model, plus its provenance."""

    classes: tuple[str, ...]
    preprocessing: Preprocessing
    input_name: str = "input"
    output_name: str = "logits"
    opset: int = 17
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        prep = asdict(self.preprocessing)
        size, chans = prep["image_size"], prep["in_chans"]
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "classes": list(self.classes),
            "input": {
                "name": self.input_name,
                "dtype": "float32",
                "layout": "NCHW",
                "shape": ["batch", chans, size, size],
            },
            "output": {"name": self.output_name, "dtype": "float32", "postprocess": "softmax"},
            "preprocessing": {**prep, "mean": list(prep["mean"]), "std": list(prep["std"])},
            "opset": self.opset,
            "files": self.files,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = CONTRACT_FILE) -> ModelContract:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{origin}: not an {FORMAT} v{FORMAT_VERSION} contract "
                f"(format={data.get('format')!r}, version={data.get('format_version')!r}); "
                "re-export with `dvc repro export`"
            )
        try:
            prep = dict(data["preprocessing"])
            prep["mean"], prep["std"] = tuple(prep["mean"]), tuple(prep["std"])
            return cls(
                classes=tuple(data["classes"]),
                preprocessing=Preprocessing(**prep),
                input_name=data["input"]["name"],
                output_name=data["output"]["name"],
                opset=int(data["opset"]),
                files=dict(data.get("files", {})),
                source=dict(data.get("source", {})),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"{origin}: malformed model contract ({exc!r})") from None

    @classmethod
    def load(cls, path: str | Path) -> ModelContract:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: model contract not found; run `dvc repro export`") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON ({exc})") from None
        return cls.from_dict(data, str(path))

    def save(self, path: str | Path) -> Path:
        return write_json(Path(path), self.to_dict())
