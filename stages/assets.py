"""DVC stage ``assets``: the pinned model files other stages and the server read."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.assets.face_model import FACE_MODEL_FILE, fetch_face_model
from emotion.core.stage import log, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="folder for the model files")
    args = parser.parse_args()
    log.info("face detector: %s", fetch_face_model(args.out / FACE_MODEL_FILE))


if __name__ == "__main__":
    run_stage(main)
