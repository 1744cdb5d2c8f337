"""The ``balance`` stage: grouped split first, then augmented variants for the training split."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from emotion.core.atomic import replace_dir, write_json, write_text
from emotion.core.plots import before_after_bars
from emotion.core.results import write_report
from emotion.core.stage import log, worker_count
from emotion.data.augment import augment, variant_rng
from emotion.data.decode import load_images
from emotion.data.manifest import SPLIT_COLUMNS, read_classes, read_manifest, to_csv_text
from emotion.data.neardup import near_pairs
from emotion.data.packed import save_array
from emotion.data.params import BalanceParams, SplitParams
from emotion.data.split import (
    SPLITS,
    assign_splits,
    drop_train_leaks,
    duplicate_groups,
    leak_audit,
    predefined_splits,
)


@dataclass(frozen=True)
class ClassPlan:
    """How one class of the training split is balanced."""

    label: str
    before: int
    target: int
    cap: int
    variants: int
    after: int
    cap_binds: bool
    within_tolerance: bool


def class_targets(counts: Mapping[str, int], strategy: str | int) -> dict[str, int]:
    """Target train count per class for a strategy (``max``, ``mean``, ``none`` or an int)."""
    if strategy == "none":
        return dict(counts)
    if strategy == "max":
        target = max(counts.values())
    elif strategy == "mean":
        target = math.ceil(sum(counts.values()) / len(counts))
    else:
        target = int(strategy)
    return dict.fromkeys(counts, target)


def plan_classes(
    counts: Mapping[str, int], strategy: str | int, max_variants: int, tolerance: float
) -> list[ClassPlan]:
    """Per-class plan: variants needed to reach the target, capped per original image.

    Classes above the target keep all their images (no undersampling).
    """
    targets = class_targets(counts, strategy)
    plans = []
    for label, before in counts.items():
        target = targets[label]
        cap = before * max_variants
        variants = min(max(target - before, 0), cap)
        after = before + variants
        plans.append(
            ClassPlan(
                label=label,
                before=before,
                target=target,
                cap=cap,
                variants=variants,
                after=after,
                cap_binds=target - before > cap,
                within_tolerance=after >= target * (1 - tolerance),
            )
        )
    return plans


def plan_variants(train: pd.DataFrame, plans: Sequence[ClassPlan], seed: int) -> pd.DataFrame:
    """Which original each variant comes from, cycling through a seeded order of originals.

    Returns rows ``(row, origin, label, variant)`` where ``row`` indexes ``train`` and
    ``variant`` counts from 1 for each origin, so variants spread evenly (counts differ by <= 1).
    """
    rows = []
    for k, plan in enumerate(plans):
        members = np.flatnonzero(train["label"].to_numpy() == plan.label)
        if not plan.variants or not len(members):
            continue
        order = members[np.random.default_rng([seed, k]).permutation(len(members))]
        for v in range(plan.variants):
            row = int(order[v % len(order)])
            rows.append((row, train["path"].iat[row], plan.label, v // len(order) + 1))
    return pd.DataFrame(rows, columns=["row", "origin", "label", "variant"])


def _augment_chunk(args: tuple[np.ndarray, list[tuple[str, int]], BalanceParams]) -> np.ndarray:
    images, keys, params = args
    return np.stack(
        [
            augment(im, params, variant_rng(params.seed, o, v))
            for im, (o, v) in zip(images, keys, strict=True)
        ]
    )


def make_variants(
    images: np.ndarray, variants: pd.DataFrame, params: BalanceParams, workers: int = 1
) -> np.ndarray:
    """Augmented images for the planned variants (deterministic whatever ``workers`` is)."""
    if variants.empty:
        return np.zeros((0, *images.shape[1:]), dtype=np.uint8)
    keys = list(zip(variants["origin"], variants["variant"], strict=True))
    rows = variants["row"].to_numpy()
    chunk = 512
    jobs = [
        (images[rows[i : i + chunk]], keys[i : i + chunk], params)
        for i in range(0, len(keys), chunk)
    ]
    bar = tqdm(total=len(keys), desc="augment", unit="img", disable=None)
    out = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(_augment_chunk, jobs):
                out.append(part)
                bar.update(len(part))
    else:
        for part in map(_augment_chunk, jobs):
            out.append(part)
            bar.update(len(part))
    bar.close()
    return np.concatenate(out)


def status_table(plans: Sequence[ClassPlan]) -> pd.DataFrame:
    """The per-class plan as a table (``status.csv``)."""
    return pd.DataFrame([asdict(p) for p in plans])


@dataclass
class Splits:
    """The three splits: per-split manifests and image arrays, with the leak audit."""

    frames: dict[str, pd.DataFrame]
    arrays: dict[str, np.ndarray]
    audit: dict[str, int]
    dropped: int


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


def make_splits(
    params: SplitParams,
    manifest: pd.DataFrame,
    images: np.ndarray,
    codes: np.ndarray,
    classes: list[str],
) -> Splits:
    """Group exact and near duplicates, split by group, audit (and optionally drop) leaks.

    Adds the ``group`` column to ``manifest``.
    """
    near = near_pairs(codes, params.phash_radius)
    manifest["group"] = duplicate_groups(list(manifest["sha256"]), near)
    groups = manifest["group"].to_numpy()
    ratios = {"train": params.train_ratio, "val": params.val_ratio, "test": params.test_ratio}
    labels = list(manifest["label"])
    if params.mode == "stratified":
        splits = assign_splits(groups, labels, ratios, params.seed)
    else:
        splits = predefined_splits(manifest["split"], groups, labels, ratios, params.seed)
    audit = leak_audit(splits, near)
    dropped = 0
    if params.mode == "predefined" and params.drop_cross_split_duplicates:
        splits, dropped = drop_train_leaks(splits, near)
    rows = {s: np.flatnonzero(splits == s) for s in SPLITS}
    return Splits(
        {s: split_frame(manifest, rows[s], classes) for s in SPLITS},
        {s: images[rows[s]] for s in SPLITS},
        audit,
        dropped,
    )


def augment_train(
    params: BalanceParams, splits: Splits, before: pd.Series, workers: int
) -> tuple[list[ClassPlan], int]:
    """Append planned augmented variants to the training split (``before``: its images per
    class); returns (plans, number of variants)."""
    train = splits.frames["train"]
    plans = plan_classes(
        before.to_dict(), params.strategy, params.max_variants_per_image, params.tolerance
    )
    variants = plan_variants(train, plans, params.seed)
    augmented = make_variants(splits.arrays["train"], variants, params, workers)
    extra = train.iloc[variants["row"].to_numpy()].reset_index(drop=True)
    extra["variant"] = variants["variant"].to_numpy()
    extra["path"] = extra["origin"] + "#aug" + extra["variant"].astype(str)
    extra[["is_augmented", "sha256", "mask_path"]] = [True, "", ""]
    splits.frames["train"] = pd.concat([train, extra], ignore_index=True)
    splits.arrays["train"] = np.concatenate([splits.arrays["train"], augmented])
    return plans, len(variants)


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
