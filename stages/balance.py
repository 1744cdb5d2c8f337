"""DVC stage ``balance``: grouped split first, then augment the training split only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from emotion.atomic import replace_dir, write_json, write_text
from emotion.augment import AugmentSpec
from emotion.balance import SPLIT_COLUMNS, make_variants, plan_classes, plan_variants, status_table
from emotion.config import load_sections
from emotion.decode import load_images
from emotion.manifest import read_manifest, to_csv_text
from emotion.neardup import near_pairs
from emotion.packed import save_array
from emotion.params.balance import BalanceParams
from emotion.params.split import SplitParams
from emotion.plots import before_after_bars
from emotion.split import (
    SPLITS,
    assign_splits,
    drop_train_leaks,
    duplicate_groups,
    leak_audit,
    predefined_splits,
)
from emotion.stage import log, run_stage, worker_count


def split_frame(manifest: pd.DataFrame, rows: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Manifest rows of one split's original images in the per-split schema."""
    df = manifest.iloc[rows]
    return pd.DataFrame(
        {
            "path": df["path"].to_numpy(),
            "label": df["label"].to_numpy(),
            "label_index": [classes.index(x) for x in df["label"]],
            "origin": df["path"].to_numpy(),
            "variant": 0,
            "is_augmented": False,
            "is_synthetic": False,
            "group": df["group"].to_numpy(),
            "source_split": df["split"].to_numpy(),
            "sha256": df["sha256"].to_numpy(),
            "mask_path": df["mask_path"].to_numpy(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest", required=True, type=Path, help="ingest output folder")
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (replaced atomically)"
    )
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, split=SplitParams, balance=BalanceParams)
    sp, bp = p.split, p.balance
    workers = worker_count()
    manifest = read_manifest(args.ingest / "manifest.csv")
    classes = json.loads((args.ingest / "labels.json").read_text())["classes"]
    images, codes = load_images(list(manifest["path"]), bp.image_size, workers)

    near = near_pairs(codes, sp.phash_radius)
    manifest["group"] = duplicate_groups(list(manifest["sha256"]), near)
    ratios = {"train": sp.train_ratio, "val": sp.val_ratio, "test": sp.test_ratio}
    labels = list(manifest["label"])
    if sp.mode == "stratified":
        splits = assign_splits(manifest["group"].to_numpy(), labels, ratios, sp.seed)
    else:
        splits = predefined_splits(
            manifest["split"], manifest["group"].to_numpy(), labels, ratios, sp.seed
        )
    audit = leak_audit(splits, near)
    dropped = 0
    if sp.mode == "predefined" and sp.drop_cross_split_duplicates:
        splits, dropped = drop_train_leaks(splits, near)

    frames = {s: split_frame(manifest, np.flatnonzero(splits == s), classes) for s in SPLITS}
    arrays = {s: images[np.flatnonzero(splits == s)] for s in SPLITS}
    before = frames["train"]["label"].value_counts().reindex(classes, fill_value=0)
    plans = plan_classes(before.to_dict(), bp.strategy, bp.max_variants_per_image, bp.tolerance)
    variants = plan_variants(frames["train"], plans, bp.seed)
    spec = AugmentSpec(
        bp.hflip_prob,
        bp.vflip_prob,
        bp.rotation_deg,
        tuple(bp.brightness),
        tuple(bp.contrast),
        tuple(bp.sharpness),
    )
    augmented = make_variants(arrays["train"], variants, spec, bp.seed, workers)
    extra = frames["train"].iloc[variants["row"].to_numpy()].reset_index(drop=True)
    extra["variant"] = variants["variant"].to_numpy()
    extra["path"] = extra["origin"] + "#aug" + extra["variant"].astype(str)
    extra[["is_augmented", "sha256", "mask_path"]] = [True, "", ""]
    frames["train"] = pd.concat([frames["train"], extra], ignore_index=True)
    arrays["train"] = np.concatenate([arrays["train"], augmented])

    status = status_table(plans)
    with replace_dir(args.out) as tmp:
        for s in SPLITS:
            frames[s].insert(0, "index", np.arange(len(frames[s])))
            write_text(tmp / f"{s}.csv", to_csv_text(frames[s].loc[:, list(SPLIT_COLUMNS)]))
            save_array(tmp / f"{s}.npy", arrays[s])
        write_text(tmp / "status.csv", to_csv_text(status))
        write_json(
            tmp / "status.json", {"classes": status.to_dict("records"), "strategy": bp.strategy}
        )
        write_json(tmp / "labels.json", {"classes": classes})

    metrics = {
        "split_sizes": {s: len(frames[s]) for s in SPLITS},
        "train_before": {c: int(before[c]) for c in classes},
        "train_after": {pl.label: pl.after for pl in plans},
        "augmented": len(variants),
        "cap_binds": sorted(pl.label for pl in plans if pl.cap_binds),
        "groups": {
            "count": int(manifest["group"].nunique()),
            "multi_image": int((manifest["group"].value_counts() > 1).sum()),
        },
        "leak_audit": {
            "phash_radius": sp.phash_radius,
            "cross_split_pairs": audit,
            "dropped_from_train": dropped,
        },
    }
    write_json(args.metrics, metrics)
    table = pd.DataFrame(
        {"class": classes, "before": before.to_numpy(), "after": [pl.after for pl in plans]}
    )
    write_text(args.plots / "class_distribution.csv", to_csv_text(table))
    before_after_bars(table, "Training images per class", args.plots / "class_distribution.png")
    log.info(
        "splits %s; train %s -> %s; leak audit %s",
        metrics["split_sizes"],
        metrics["train_before"],
        metrics["train_after"],
        audit,
    )


if __name__ == "__main__":
    run_stage(main)
