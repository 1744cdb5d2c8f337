"""DVC stage ``ingest``: verify a raw dataset, write its manifest, EDA metrics and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.atomic import replace_dir, write_json, write_text
from emotion.config import load_sections
from emotion.eda import class_distribution, eda_metrics, sample_grid
from emotion.ingest import ingest
from emotion.labels import LabelMap
from emotion.manifest import to_csv_text, write_manifest
from emotion.params.ingest import IngestParams
from emotion.stage import log, run_stage, worker_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (replaced atomically)"
    )
    parser.add_argument("--metrics", required=True, type=Path, help="EDA metrics JSON")
    parser.add_argument("--plots", required=True, type=Path, help="folder for EDA plots")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, ingest=IngestParams).ingest
    root = Path.cwd()
    labels = LabelMap(p.classes, p.aliases, p.drop)
    with replace_dir(args.out) as tmp:
        result = ingest(
            Path(p.source),
            labels,
            on_corrupt=p.on_corrupt,
            scratch=tmp / "images",
            root=root,
            relocate=(tmp, args.out),
            workers=worker_count(),
        )
        write_manifest(result.manifest, tmp / "manifest.csv")
        write_text(tmp / "quarantine.csv", to_csv_text(result.quarantine))
        write_json(tmp / "labels.json", {"classes": list(p.classes)})

    metrics = eda_metrics(
        result.manifest,
        p.classes,
        dropped=result.dropped,
        quarantined=len(result.quarantine),
        ignored_files=result.ignored_files,
    )
    write_json(args.metrics, metrics)
    write_text(
        args.plots / "class_distribution.csv",
        to_csv_text(class_distribution(result.manifest, p.classes)),
    )
    sample_grid(result.manifest, p.classes, p.samples_per_class, root, args.plots / "samples.png")
    log.info(
        "ingested %d images (%s), dropped %s, quarantined %d",
        metrics["total"],
        {c: v["count"] for c, v in metrics["classes"].items()},
        metrics["dropped"],
        metrics["quarantined"],
    )
    if len(result.quarantine):
        log.warning(
            "quarantined %d file(s); see %s", len(result.quarantine), args.out / "quarantine.csv"
        )


if __name__ == "__main__":
    run_stage(main)
