"""Cost of test-time augmentation in serving: per-image latency of each ``--tta`` mode.

The in-process serving pipeline (:class:`~emotion.serve.inference.Predictor`: decode, detect the
face, crop, preprocess, classify every view, calibrated mean) on a FER-style 48 px crop and on a
512 px photo, one predictor per mode, calls interleaved round-robin so that the machine's load
drifts evenly over the modes. ``none`` is the baseline of the ratios.

Usage (repo root):
    python -m benchmarks.bench_tta [--model-dir models] [--variant fp32] [--rounds 300]
Needs an exported model (``dvc repro export``).
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from benchmarks import emit
from benchmarks.bench_serve_load import sample_images
from emotion.assets.model_files import DEFAULT_FACE_MODEL
from emotion.serve import ServeSettings
from emotion.serve.inference import Predictor
from emotion.vision.tta import TTA_VIEWS


def measure(model_dir: Path, variant: str, rounds: int) -> dict[str, dict[str, float]]:
    """Median and p95 milliseconds per image and mode, with ratios to ``none``."""
    images = sample_images()
    times: dict[tuple[str, str], list[float]] = {}
    with ExitStack() as stack:
        predictors = {
            mode: stack.enter_context(
                Predictor.from_settings(
                    ServeSettings(model_dir, variant, face_model=DEFAULT_FACE_MODEL, tta=mode)
                )
            )
            for mode in TTA_VIEWS
        }
        for _ in range(rounds):
            for mode, predictor in predictors.items():
                for name, data in images.items():
                    start = time.perf_counter()
                    predictor.predict_bytes(data)
                    times.setdefault((mode, name), []).append(time.perf_counter() - start)
    out: dict[str, dict[str, float]] = {}
    for (mode, name), values in times.items():
        ms = np.array(values[rounds // 10 :]) * 1e3  # first 10%: warm-up
        out.setdefault(mode, {"views": TTA_VIEWS[mode]})
        out[mode][f"{name}_p50_ms"] = round(float(np.median(ms)), 3)
        out[mode][f"{name}_p95_ms"] = round(float(np.percentile(ms, 95)), 3)
    for mode in out:
        for name in images:
            base = out["none"][f"{name}_p50_ms"]
            out[mode][f"{name}_p50_ratio"] = round(out[mode][f"{name}_p50_ms"] / base, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--variant", default="fp32", choices=["fp32", "int8"])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    emit(measure(args.model_dir, args.variant, args.rounds))


if __name__ == "__main__":
    main()
