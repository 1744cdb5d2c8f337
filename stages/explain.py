"""DVC stage ``explain``: Grad-CAM, Grad-CAM++, SHAP and LIME on a probe set, with checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.core.config import load_sections
from emotion.core.stage import run_stage
from emotion.explain.params import ExplainParams
from emotion.stages.explain import run_explain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--regions", required=True, type=Path, help="regions stage output folder")
    parser.add_argument("--model", required=True, type=Path, help="best_model.pth")
    parser.add_argument("--out", required=True, type=Path, help="folder for records and maps")
    parser.add_argument("--report", required=True, type=Path, help="full report JSON (committed)")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path, help="folder for PNG grids")
    parser.add_argument(
        "--region-plots", required=True, type=Path, help="folder for the region table's plots"
    )
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    run_explain(
        load_sections(args.params, explain=ExplainParams).explain,
        data=args.data,
        regions=args.regions,
        model=args.model,
        out=args.out,
        report=args.report,
        metrics=args.metrics,
        plots=args.plots,
        region_plots=args.region_plots,
    )


if __name__ == "__main__":
    run_stage(main)
