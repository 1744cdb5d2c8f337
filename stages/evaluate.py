"""DVC stage ``evaluate``: calibration on validation, test and extra-set metrics, predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.data.params import IngestParams
from emotion.stages.evaluate import run_evaluate
from emotion.training.params import EvaluateParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--model", required=True, type=Path, help="best_model.pth")
    parser.add_argument("--calibration", required=True, type=Path, help="calibration.json out")
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    parser.add_argument("--predictions", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    sections = load_sections(args.params, evaluate=EvaluateParams, ingest=IngestParams)
    run_evaluate(
        sections.evaluate,
        sections.ingest,
        data=args.data,
        model=args.model,
        calibration=args.calibration,
        report=args.report,
        metrics=args.metrics,
        plots=args.plots,
        predictions=args.predictions,
    )


if __name__ == "__main__":
    run_stage(main)
