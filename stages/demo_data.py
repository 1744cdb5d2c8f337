"""DVC stage ``demo_data``: write the procedural demo face dataset (images + expression masks)."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.demo_data.params import DemoDataParams
from emotion.stages.demo_data import run_demo_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (replaced atomically)"
    )
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    run_demo_data(load_sections(args.params, demo_data=DemoDataParams).demo_data, out=args.out)


if __name__ == "__main__":
    run_stage(main)
