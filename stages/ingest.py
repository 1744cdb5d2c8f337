"""DVC stage ``ingest``: verify a raw dataset, write its manifest, EDA metrics and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.data.params import IngestParams
from emotion.stages.ingest import run_ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (replaced atomically)"
    )
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--metrics", required=True, type=Path, help="EDA metrics JSON")
    parser.add_argument("--plots", required=True, type=Path, help="folder for EDA plots")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    run_ingest(
        load_sections(args.params, ingest=IngestParams).ingest,
        out=args.out,
        report=args.report,
        metrics=args.metrics,
        plots=args.plots,
    )


if __name__ == "__main__":
    run_stage(main)
