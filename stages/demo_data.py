"""DVC stage ``demo_data``: write the procedural demo face dataset (images + expression masks)."""

from __future__ import annotations

import argparse

from emotion.core.config import load_sections
from emotion.core.stage import log, run_stage, worker_count
from emotion.demo.dataset import generate_dataset
from emotion.demo.params import DemoDataParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_sections(args.params, demo_data=DemoDataParams).demo_data
    counts = generate_dataset(params, args.out, workers=worker_count())
    log.info("wrote %d demo faces to %s: %s", sum(counts.values()), args.out, counts)


if __name__ == "__main__":
    run_stage(main)
