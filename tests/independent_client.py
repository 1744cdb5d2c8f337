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


def preprocess(path: Path, prep: dict) -> np.ndarray:
    """One image file -> (in_chans, size, size) float32, following model.json only."""
    assert (prep["source_resample"], prep["resample"]) == ("lanczos", "bilinear-antialias")
    source, size = prep["source_size"], prep["image_size"]
    with Image.open(path) as image:
        gray = image.convert("L")
        if gray.size != (source, source):
            gray = gray.resize((source, source), Image.Resampling.LANCZOS)
        x = np.asarray(gray, dtype=np.float32) * np.float32(prep["scale"])
    if source != size:  # Pillow's bilinear on floats widens its support when shrinking
        resized = Image.fromarray(x, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        x = np.asarray(resized, dtype=np.float32)
    x = np.repeat(x[None], prep["in_chans"], axis=0)
    mean = np.asarray(prep["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(prep["std"], dtype=np.float32)[:, None, None]
    return (x - mean) / std


def predict(model_dir: Path, paths: list[Path]) -> list[str]:
    """Predicted class name for each image file."""
    session, contract = load(model_dir)
    batch = np.stack([preprocess(p, contract["preprocessing"]) for p in paths]).astype(np.float32)
    logits = session.run([contract["output"]["name"]], {contract["input"]["name"]: batch})[0]
    return [contract["classes"][i] for i in logits.argmax(1)]
