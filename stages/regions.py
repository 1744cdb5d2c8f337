"""DVC stage ``regions``: brow/eye/nose/mouth/cheek masks of the test faces from the face mesh."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.regions.params import RegionsParams
from emotion.stages.regions import run_regions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--mesh", required=True, type=Path, help="face_landmark.tflite")
    parser.add_argument("--out", required=True, type=Path, help="folder for the region masks")
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    run_regions(
        load_sections(args.params, regions=RegionsParams).regions,
        data=args.data,
        mesh=args.mesh,
        out=args.out,
        report=args.report,
    )


if __name__ == "__main__":
    run_stage(main)
