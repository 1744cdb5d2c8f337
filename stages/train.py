"""DVC stage ``train``: timm transfer learning on the packed splits (also under ``torchrun``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.stages.train import run_train
from emotion.training.params import ModelParams, TrainParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output (labels, val)")
    parser.add_argument(
        "--train", type=Path, help="folder with the training split (default: --data)"
    )
    parser.add_argument("--models", required=True, type=Path, help="folder for best_model.pth")
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--live", required=True, type=Path, help="folder for the dvclive log")
    parser.add_argument("--env", required=True, type=Path, help="environment report (.json)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_sections(args.params, model=ModelParams, train=TrainParams)
    run_train(
        p.model,
        p.train,
        data=args.data,
        train_dir=args.train or args.data,
        models=args.models,
        report=args.report,
        metrics=args.metrics,
        live=args.live,
        env=args.env,
    )


if __name__ == "__main__":
    run_stage(main)
