"""DVC stage ``assets``: the pinned model files other stages and the server read."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.assets.face_model import FACE_DETECTOR, FACE_MESH, fetch_models
from emotion.core.stage import log, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="folder for the model files")
    args = parser.parse_args()
    pins = (FACE_DETECTOR, FACE_MESH)
    for path in fetch_models({args.out / pin.name: pin for pin in pins}):
        log.info("model file: %s", path)


if __name__ == "__main__":
    run_stage(main)
