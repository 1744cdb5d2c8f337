"""MediaPipe's face-mesh model (468 landmarks) run on face crops with LiteRT.

The model (``face_landmark.tflite``, fetched by the ``assets`` stage) takes a 192x192 RGB crop in
[0, 1] and returns 468 (x, y, z) points in input pixels plus a face-presence logit. A grayscale
crop is replicated to RGB and resized with Pillow's bilinear filter; points come back in the
crop's own pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from emotion.core.errors import DataError

MESH_INPUT = 192  #: the model's square input side, px
MESH_POINTS = 468


@dataclass(frozen=True)
class MeshFit:
    """One crop's landmarks ``(468, 2)`` in crop pixels (x, y) and the face-presence probability."""

    points: np.ndarray
    score: float


class FaceMesh:
    """A loaded face-mesh interpreter; :meth:`fit` runs it on one grayscale crop."""

    def __init__(self, model: Path, threads: int = 1) -> None:
        if not Path(model).is_file():
            raise DataError(
                f"face-mesh model {model} not found: run `make assets` (DVC stage `assets`)"
            )
        self._interpreter = Interpreter(model_path=str(model), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {
            int(np.prod(o["shape"])): o["index"] for o in self._interpreter.get_output_details()
        }
        if MESH_POINTS * 3 not in outputs or 1 not in outputs:
            raise DataError(
                f"{model} is not MediaPipe's face-mesh model (no {MESH_POINTS}-point output): "
                "run `make assets` for assets/face_landmark.tflite"
            )
        self._points, self._score = outputs[MESH_POINTS * 3], outputs[1]

    def fit(self, gray: np.ndarray) -> MeshFit:
        """Landmarks of the face filling ``gray`` (H, W), values 0-255."""
        height, width = gray.shape
        crop = Image.fromarray(np.asarray(gray, dtype=np.uint8)).convert("RGB")
        crop = crop.resize((MESH_INPUT, MESH_INPUT), Image.Resampling.BILINEAR)
        x = np.asarray(crop, dtype=np.float32)[None] / 255.0
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        xyz = self._interpreter.get_tensor(self._points).reshape(MESH_POINTS, 3)
        logit = float(self._interpreter.get_tensor(self._score).ravel()[0])
        scale = np.array([width / MESH_INPUT, height / MESH_INPUT], dtype=np.float32)
        return MeshFit(points=xyz[:, :2] * scale, score=float(1.0 / (1.0 + np.exp(-logit))))
