"""A client that knows nothing of this repository: onnxruntime, numpy, Pillow and model.json.

Kept deliberately free of ``emotion`` imports (a test checks the import list): it proves the
exported contract alone is enough to reproduce the pipeline's predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image


def load(model_dir: Path) -> tuple[onnxruntime.InferenceSession, dict]:
    contract = json.loads((model_dir / "model.json").read_text())
    session = onnxruntime.InferenceSession(
        str(model_dir / contract["files"]["fp32"]["path"]), providers=["CPUExecutionProvider"]
    )
    return session, contract


def _finish(x: np.ndarray, prep: dict) -> np.ndarray:
    """[0, 1] float image of any size -> (in_chans, size, size) normalised model input."""
    size = prep["image_size"]
    if x.shape != (size, size):  # Pillow's bilinear on floats widens its support when shrinking
        resized = Image.fromarray(x, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        x = np.asarray(resized, dtype=np.float32)
    x = np.repeat(x[None], prep["in_chans"], axis=0)
    mean = np.asarray(prep["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(prep["std"], dtype=np.float32)[:, None, None]
    return (x - mean) / std


def views(path: Path, contract: dict) -> np.ndarray:
    """One image file -> (views, in_chans, size, size) float32, following model.json only."""
    prep, tta = contract["preprocessing"], contract["tta"]
    assert (prep["source_resample"], prep["resample"]) == ("lanczos", "bilinear-antialias")
    assert tta["aggregate"] == "mean_probability"
    source = prep["source_size"]
    with Image.open(path) as image:
        gray = image.convert("L")
        if gray.size != (source, source):
            gray = gray.resize((source, source), Image.Resampling.LANCZOS)
        x = np.asarray(gray, dtype=np.float32) * np.float32(prep["scale"])
    boxes = [(0, 0, source)]
    if tta["mode"] == "ten_crop":  # four corners, then the centre
        side = max(1, round(tta["crop"] * source))
        far = source - side
        boxes = [(0, 0), (0, far), (far, 0), (far, far), (far // 2, far // 2)]
        boxes = [(top, left, side) for top, left in boxes]
    out = []
    for top, left, side in boxes:
        crop = np.ascontiguousarray(x[top : top + side, left : left + side])
        out.append(_finish(crop, prep))
        if tta["mode"] != "none":
            out.append(_finish(np.ascontiguousarray(crop[:, ::-1]), prep))
    assert len(out) == tta["views"]
    return np.stack(out).astype(np.float32)


def probabilities(model_dir: Path, paths: list[Path]) -> np.ndarray:
    """(images, classes) calibrated probabilities: mean over views of softmax(logits / T)."""
    session, contract = load(model_dir)
    batch = np.stack([views(p, contract) for p in paths])
    flat = batch.reshape(-1, *batch.shape[2:])
    logits = session.run([contract["output"]["name"]], {contract["input"]["name"]: flat})[0]
    z = logits.astype(np.float64).reshape(len(paths), batch.shape[1], -1)
    z = z / contract["output"]["temperature"]
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).mean(1)


def predict(model_dir: Path, paths: list[Path]) -> list[str]:
    """Predicted class name for each image file."""
    classes = json.loads((model_dir / "model.json").read_text())["classes"]
    return [classes[i] for i in probabilities(model_dir, paths).argmax(1)]
