"""DVC stage ``synthesize``: Stable Diffusion images for the training split, with QC."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.stages.synthesize import run_synthesize
from emotion.synthesize.params import SynthParams
from emotion.vision.params import CropParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--out", required=True, type=Path, help="provenance folder")
    parser.add_argument("--train-out", required=True, type=Path, help="merged training split")
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_sections(args.params, synth=SynthParams, crop=CropParams)
    run_synthesize(
        p.synth,
        p.crop,
        data=args.data,
        out=args.out,
        train_out=args.train_out,
        report=args.report,
        metrics=args.metrics,
    )


if __name__ == "__main__":
    run_stage(main)
