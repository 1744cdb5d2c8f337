"""Stage ``balance``: grouped split first, then augment the training split only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotion.core.atomic import replace_dir, write_json, write_text
from emotion.core.plots import before_after_bars
from emotion.core.results import write_report
from emotion.core.stage import log, worker_count
from emotion.data.balance import augment_train, status_table
from emotion.data.decode import load_images
from emotion.data.manifest import SPLIT_COLUMNS, read_classes, read_manifest, to_csv_text
from emotion.data.packed import save_array
from emotion.data.params import BalanceParams, SplitParams
from emotion.data.split import (
    SPLITS,
    make_splits,
)


def run_balance(
    split: SplitParams,
    params: BalanceParams,
    *,
    ingested: Path,
    out: Path,
    report: Path,
    plots: Path,
) -> dict[str, Any]:
    """Split first (grouped by duplicates), then augment the training split only."""
    workers = worker_count()
    manifest = read_manifest(ingested / "manifest.csv")
    classes = read_classes(ingested)
    images, codes = load_images(list(manifest["path"]), params.image_size, workers)
    splits = make_splits(split, manifest, images, codes, classes)
    before = splits.frames["train"]["label"].value_counts().reindex(classes, fill_value=0)
    plans, augmented = augment_train(params, splits, before, workers)
    status = status_table(plans)
    with replace_dir(out) as tmp:
        for s in SPLITS:
            frame = splits.frames[s]
            frame.insert(0, "index", np.arange(len(frame)))
            write_text(tmp / f"{s}.csv", to_csv_text(frame.loc[:, list(SPLIT_COLUMNS)]))
            save_array(tmp / f"{s}.npy", splits.arrays[s])
        write_text(tmp / "status.csv", to_csv_text(status))
        records = {"classes": status.to_dict("records"), "strategy": params.strategy}
        write_json(tmp / "status.json", records)
        write_json(tmp / "labels.json", {"classes": classes})
    summary = {
        "split_sizes": {s: len(splits.frames[s]) for s in SPLITS},
        "train_before": {c: int(before[c]) for c in classes},
        "train_after": {pl.label: pl.after for pl in plans},
        "augmented": augmented,
        "cap_binds": sorted(pl.label for pl in plans if pl.cap_binds),
        "groups": {
            "count": int(manifest["group"].nunique()),
            "multi_image": int((manifest["group"].value_counts() > 1).sum()),
        },
        "leak_audit": {
            "phash_radius": split.phash_radius,
            "cross_split_pairs": splits.audit,
            "dropped_from_train": splits.dropped,
        },
    }
    rows = [{"class": pl.label, "before": int(before[pl.label]), "after": pl.after} for pl in plans]
    write_report(summary, rows, report)
    table = pd.DataFrame(
        {"class": classes, "before": before.to_numpy(), "after": [pl.after for pl in plans]}
    )
    write_text(plots / "class_distribution.csv", to_csv_text(table))
    before_after_bars(table, "Training images per class", plots / "class_distribution.png")
    log.info(
        "splits %s; train %s -> %s; leak audit %s",
        summary["split_sizes"],
        summary["train_before"],
        summary["train_after"],
        splits.audit,
    )
    return summary
