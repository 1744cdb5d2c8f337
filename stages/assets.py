"""DVC stage ``assets``: the pinned model files other stages and the server read."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.stage import run_stage
from emotion.stages.assets import run_assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="folder for the model files")
    args = parser.parse_args()
    run_assets(out=args.out)


if __name__ == "__main__":
    run_stage(main)
