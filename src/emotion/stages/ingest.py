"""Stage ``ingest``: verify the source, write its manifest, quarantine, EDA report and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emotion.core.atomic import replace_dir, write_json, write_text
from emotion.core.results import write_results
from emotion.core.stage import log, worker_count
from emotion.data.eda import HEADLINE, class_distribution, eda_metrics, sample_grid
from emotion.data.ingest import ingest
from emotion.data.labels import LabelMap
from emotion.data.manifest import (
    to_csv_text,
    write_manifest,
)
from emotion.data.params import IngestParams


def run_ingest(
    params: IngestParams, *, out: Path, report: Path, metrics: Path, plots: Path
) -> dict[str, Any]:
    """Verify ``ingest.source``, write its manifest (+ quarantine), EDA report, metrics, plots."""
    root = Path.cwd()
    labels = LabelMap(params.classes, params.aliases, params.drop)
    with replace_dir(out) as tmp:
        result = ingest(
            Path(params.source),
            labels,
            on_corrupt=params.on_corrupt,
            scratch=tmp / "images",
            root=root,
            relocate=(tmp, out),
            workers=worker_count(),
        )
        write_manifest(result.manifest, tmp / "manifest.csv")
        write_text(tmp / "quarantine.csv", to_csv_text(result.quarantine))
        write_json(tmp / "labels.json", {"classes": list(params.classes)})
    eda = eda_metrics(
        result.manifest,
        params.classes,
        dropped=result.dropped,
        quarantined=len(result.quarantine),
        ignored_files=result.ignored_files,
    )
    rows = [{"class": c, **v} for c, v in eda["classes"].items()]
    write_results(eda, rows, report_path=report, metrics_path=metrics, keys=HEADLINE)
    table = class_distribution(result.manifest, params.classes)
    write_text(plots / "class_distribution.csv", to_csv_text(table))
    sample_grid(
        result.manifest, params.classes, params.samples_per_class, root, plots / "samples.png"
    )
    log.info(
        "ingested %d images (%s), dropped %s, quarantined %d",
        eda["total"],
        {c: v["count"] for c, v in eda["classes"].items()},
        eda["dropped"],
        eda["quarantined"],
    )
    if len(result.quarantine):
        log.warning(
            "quarantined %d file(s); see %s", len(result.quarantine), out / "quarantine.csv"
        )
    return eda
