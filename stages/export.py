"""DVC stage ``export``: ONNX with a parity proof, int8 quantization and a latency benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.export.params import ExportParams
from emotion.stages.export import run_export
from emotion.vision.params import CropParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--model", required=True, type=Path, help="best_model.pth")
    parser.add_argument("--calibration", required=True, type=Path, help="calibration.json")
    parser.add_argument("--train", required=True, type=Path, help="training split (synthesize out)")
    parser.add_argument("--evaluation", required=True, type=Path, help="metrics/eval.json")
    parser.add_argument("--out", required=True, type=Path, help="folder for model files")
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--env", required=True, type=Path, help="env_report JSON out")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_sections(args.params, export=ExportParams, crop=CropParams)
    run_export(
        p.export,
        p.crop,
        data=args.data,
        model=args.model,
        calibration=args.calibration,
        train=args.train,
        evaluation=args.evaluation,
        out=args.out,
        report=args.report,
        metrics=args.metrics,
        env=args.env,
    )


if __name__ == "__main__":
    run_stage(main)
