"""Balancing the training split: per-class targets, variant plans and their augmentation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from emotion.data.augment import augment, variant_rng
from emotion.data.params import BalanceParams
from emotion.data.split import Splits


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
