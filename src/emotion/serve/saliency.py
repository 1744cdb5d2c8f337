"""Occlusion sensitivity of the served model: which parts of the face its prediction rests on.

Why occlusion (Zeiler & Fergus, 2014): it needs only forward passes of the exported ONNX model
(no gradients, no PyTorch), so it explains exactly what is served, int8 and TTA included; it is
deterministic (LIME and SHAP sample); and the occluded copies go through onnxruntime in batches
of ``batch`` faces (so a ten-crop model's ~1,200 views never go through at once, which bounds the
memory an explanation takes). Each square patch of the stored-size face is set to mid-grey in
turn; a pixel's saliency is the mean drop of the predicted class's (calibrated, TTA-averaged)
probability over the patches covering it, clipped at 0.

Its real resolution is the grid the patch edges cut the face into (:meth:`OcclusionSaliency.cell`:
4 px cells, 12 x 12 of a 48 px face with the defaults): every pixel of a cell is covered by the
same patches, so the map is constant over each cell and says which region, not which pixel.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

#: grays (N, S, S) uint8 -> probabilities (N, classes) through the served pipeline
ProbabilityFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class OcclusionSaliency:
    """Patch side and stride in stored-size pixels, the grey level of the occluder, and how many
    occluded faces go through the model at once."""

    patch: int = 8
    stride: int = 4
    fill: int = 128
    batch: int = 8

    def positions(self, size: int) -> list[tuple[int, int]]:
        """(top, left) of every patch: a regular grid whose last row/column meets the edge."""
        last = max(0, size - self.patch)
        steps = sorted({*range(0, last + 1, self.stride), last})
        return [(top, left) for top in steps for left in steps]

    def cell(self, size: int) -> int:
        """Side in stored-size pixels of the square cells the map is constant over: every patch
        edge (``top``, ``top + patch``, both ends of the face) lies on a multiple of it."""
        last = max(0, size - self.patch)
        return math.gcd(self.stride, min(self.patch, size), last, size)

    def occluded(self, gray: np.ndarray) -> np.ndarray:
        """(patches, S, S) copies of one stored-size face, each with one patch greyed out."""
        copies = np.repeat(gray[None], len(self.positions(gray.shape[0])), axis=0)
        for copy, (top, left) in zip(copies, self.positions(gray.shape[0]), strict=True):
            copy[top : top + self.patch, left : left + self.patch] = self.fill
        return copies

    def saliency(
        self, gray: np.ndarray, target: int, base: float, probabilities: ProbabilityFn
    ) -> np.ndarray:
        """float (S, S) >= 0: mean drop of class ``target``'s probability from ``base`` (its
        probability on the unoccluded face) per pixel."""
        copies = self.occluded(gray)
        chunks = [
            probabilities(copies[i : i + self.batch])[:, target]
            for i in range(0, len(copies), self.batch)
        ]
        drops = base - np.concatenate(chunks)
        total = np.zeros(gray.shape, dtype=np.float64)
        count = np.zeros(gray.shape, dtype=np.float64)
        for drop, (top, left) in zip(drops, self.positions(gray.shape[0]), strict=True):
            total[top : top + self.patch, left : left + self.patch] += drop
            count[top : top + self.patch, left : left + self.patch] += 1
        return np.clip(total / np.maximum(count, 1), 0.0, None)

    def explain(
        self,
        gray: np.ndarray,
        target: int,
        base: float,
        probabilities: ProbabilityFn,
        box: dict[str, int],
    ) -> dict[str, Any]:
        """The response's ``saliency``: the map as a grayscale PNG of the stored-size face
        (``size`` x ``size``, constant over ``grid`` x ``grid`` cells of ``cell`` px), aligned to
        ``box``, the region of the upload that was resized to that face: what the model saw."""
        start = time.perf_counter()
        values = self.saliency(gray, target, base, probabilities)
        peak = float(values.max())
        scaled = np.round(255 * values / peak) if peak > 0 else np.zeros_like(values)
        buffer = io.BytesIO()
        Image.fromarray(scaled.astype(np.uint8), mode="L").save(buffer, format="PNG")
        return {
            "method": "occlusion",
            "png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "box": box,
            "size": gray.shape[0],
            "grid": gray.shape[0] // self.cell(gray.shape[0]),
            "cell": self.cell(gray.shape[0]),
            "patch": self.patch,
            "stride": self.stride,
            "evaluations": len(self.positions(gray.shape[0])) + 1,
            "max_probability_drop": round(peak, 6),
            "seconds": round(time.perf_counter() - start, 6),
        }
