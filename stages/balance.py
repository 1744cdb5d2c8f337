"""DVC stage ``balance``: grouped split first, then augment the training split only."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.data.params import BalanceParams, SplitParams
from emotion.stages.balance import run_balance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest", required=True, type=Path, help="ingest output folder")
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (replaced atomically)"
    )
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--plots", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    p = load_sections(args.params, split=SplitParams, balance=BalanceParams)
    run_balance(
        p.split,
        p.balance,
        ingested=args.ingest,
        out=args.out,
        report=args.report,
        plots=args.plots,
    )


if __name__ == "__main__":
    run_stage(main)
