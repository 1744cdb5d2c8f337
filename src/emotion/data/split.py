"""Grouped train/val/test splitting and the cross-split leak audit.

Images that show the same face must not straddle splits. Groups are the connected components of
"same bytes" and "pHash within radius" links; whole groups are assigned to splits, stratified by
the group's majority label with a seeded greedy fill towards the target ratios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from emotion.core.errors import DataError
from emotion.data.neardup import near_pairs
from emotion.data.params import SplitParams

SPLITS = ("train", "val", "test")


def duplicate_groups(sha256: Sequence[str], near: np.ndarray) -> np.ndarray:
    """Group id per image: connected components of identical bytes and near-duplicate pairs."""
    n = len(sha256)
    codes = pd.factorize(pd.Series(list(sha256)))[0]
    order = np.argsort(codes, kind="stable")
    same = order[1:][codes[order][1:] == codes[order][:-1]]
    prev = order[:-1][codes[order][1:] == codes[order][:-1]]
    edges = np.concatenate([near.reshape(-1, 2), np.stack([prev, same], axis=1)])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber groups by first member so ids do not depend on scipy's traversal order
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels]


def group_labels(groups: np.ndarray, labels: Sequence[str]) -> pd.Series:
    """Majority label of each group (ties broken by label name)."""
    df = pd.DataFrame({"group": groups, "label": list(labels)})
    counts = df.groupby(["group", "label"]).size().reset_index(name="n")
    counts = counts.sort_values(["group", "n", "label"], ascending=[True, False, True])
    return counts.drop_duplicates("group").set_index("group")["label"]


def assign_splits(
    groups: np.ndarray, labels: Sequence[str], ratios: Mapping[str, float], seed: int
) -> np.ndarray:
    """Split name per image; groups are kept whole and each class is filled to its ratios."""
    sizes = pd.Series(groups).value_counts().sort_index()
    majority = group_labels(groups, labels)
    names = [s for s in ratios if ratios[s] > 0]
    assigned: dict[int, str] = {}
    for k, label in enumerate(sorted(majority.unique())):
        ids = majority.index[majority == label].to_numpy()
        rng = np.random.default_rng([seed, k])
        ids = ids[rng.permutation(len(ids))]
        ids = ids[np.argsort(-sizes.loc[ids].to_numpy(), kind="stable")]  # big groups first
        total = sizes.loc[ids].sum()
        filled = dict.fromkeys(names, 0)
        for gid in ids:
            deficit = {s: ratios[s] * total - filled[s] for s in names}
            best = max(names, key=lambda s: (deficit[s], -names.index(s)))
            assigned[int(gid)] = best
            filled[best] += int(sizes.loc[gid])
    return np.array([assigned[int(g)] for g in groups], dtype=object)


def leak_audit(splits: Sequence[str], near: np.ndarray) -> dict[str, int]:
    """Near-duplicate pairs whose members sit in different splits, per split pair."""
    splits = np.asarray(splits, dtype=object)
    out = {f"{a}-{b}": 0 for a, b in combinations(SPLITS, 2)}
    for i, j in near.reshape(-1, 2):
        a, b = sorted((splits[i], splits[j]), key=SPLITS.index)
        if a != b:
            out[f"{a}-{b}"] += 1
    return out


def drop_train_leaks(splits: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, int]:
    """Mark train images that near-duplicate a val/test image as ``dropped``."""
    splits = splits.copy()
    pairs = near.reshape(-1, 2)
    cross = pairs[splits[pairs[:, 0]] != splits[pairs[:, 1]]]
    members = np.unique(cross)
    drop = members[splits[members] == "train"]
    splits[drop] = "dropped"
    return splits, len(drop)


def carve(
    groups: np.ndarray,
    labels: Sequence[str],
    splits: np.ndarray,
    target: str,
    ratio: float,
    seed: int,
) -> np.ndarray:
    """Move a grouped, stratified ``ratio`` of the train split into the empty split ``target``."""
    splits = splits.copy()
    pool = np.flatnonzero(splits == "train")
    if ratio <= 0 or not len(pool):
        return splits
    sub = assign_splits(
        groups[pool], [labels[i] for i in pool], {"train": 1 - ratio, target: ratio}, seed
    )
    splits[pool[sub == target]] = target
    return splits


def predefined_splits(
    source_split: Sequence[str],
    groups: np.ndarray,
    labels: Sequence[str],
    ratios: Mapping[str, float],
    seed: int,
) -> np.ndarray:
    """The dataset's own splits; a missing val/test split is carved out of train (grouped)."""
    splits = np.array(source_split, dtype=object)
    unlabeled = int((splits == "").sum())
    if unlabeled:
        raise DataError(
            f"split.mode: predefined, but {unlabeled} image(s) have no predefined split (no "
            "train/validation/test folder or Usage column). Use split.mode: stratified, or "
            "arrange the dataset in train/ val/ test/ folders."
        )
    if not (splits == "train").any():
        raise DataError("split.mode: predefined, but the dataset has no train split")
    for offset, name in enumerate(("val", "test")):
        if not (splits == name).any():
            splits = carve(groups, labels, splits, name, ratios[name], seed + offset + 1)
    return splits


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
