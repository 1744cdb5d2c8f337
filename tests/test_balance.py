"""Balance stage: near-duplicate index, grouped splits, leak audit, train-only augmentation."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emotion.core.errors import DataError
from emotion.data.augment import augment, variant_rng
from emotion.data.balance import class_targets, plan_classes, plan_variants
from emotion.data.neardup import HammingIndex, hamming, near_pairs
from emotion.data.split import assign_splits, duplicate_groups, leak_audit, predefined_splits

from .conftest import REPO, params_text, section, tool_env

SPEC = section(
    "balance",
    hflip_prob=0.2,
    vflip_prob=0.1,
    rotation_deg=20.0,
    brightness=[0.7, 1.3],
    contrast=[0.7, 1.3],
    sharpness=[0.7, 1.5],
)


def _codes_with_planted_neighbours(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(
        0, 2, n, dtype=np.uint64
    )
    for k in range(n // 20):
        flips = rng.choice(64, size=k % 7, replace=False)
        mask = np.uint64(sum(1 << int(b) for b in flips))
        codes[rng.integers(n)] = codes[rng.integers(n)] ^ mask
    return codes


@pytest.mark.parametrize("radius", [0, 1, 3, 4, 6])
def test_near_pairs_equals_brute_force(radius: int) -> None:
    codes = _codes_with_planted_neighbours(600, radius)
    dist = hamming(codes[:, None], codes[None, :])
    i, j = np.nonzero(np.triu(dist <= radius, k=1))
    expected = sorted(zip(i.tolist(), j.tolist(), strict=True))
    assert [tuple(p) for p in near_pairs(codes, radius).tolist()] == expected
    assert len(expected) > 0


def test_hamming_index_query_equals_brute_force() -> None:
    codes = _codes_with_planted_neighbours(400, 1)
    index = HammingIndex(4)
    for code in codes[:300].tolist():
        index.add(code)
    for code in codes[300:].tolist():
        dist = hamming(code, codes[:300])
        assert index.query(code) == np.flatnonzero(dist <= 4).tolist()
    assert len(index) == 300


def test_groups_join_identical_bytes_and_near_duplicate_chains() -> None:
    sha = ["a", "b", "c", "a", "d", "e"]
    near = np.array([[1, 2], [2, 4]])
    groups = duplicate_groups(sha, near)
    assert groups.tolist() == [0, 1, 1, 0, 1, 2]


def test_stratified_grouped_split_keeps_groups_whole_and_follows_ratios() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(["happy", "sad", "angry"], size=2000, p=[0.5, 0.3, 0.2]).tolist()
    groups = np.arange(2000)
    groups[1000:1300] = groups[1000:1300] // 3 * 3  # groups of three
    ratios = {"train": 0.7, "val": 0.15, "test": 0.15}
    splits = assign_splits(groups, labels, ratios, seed=1)
    per_group = pd.DataFrame({"g": groups, "s": splits}).groupby("g")["s"].nunique()
    assert (per_group == 1).all()
    table = pd.crosstab(
        pd.Series(labels, name="label"), pd.Series(splits, name="split"), normalize="index"
    )
    for split, ratio in ratios.items():
        assert np.allclose(table[split], ratio, atol=0.01)
    assert (assign_splits(groups, labels, ratios, seed=1) == splits).all()
    assert (assign_splits(groups, labels, ratios, seed=2) != splits).any()


def test_predefined_mode_honours_splits_and_carves_a_missing_test_split() -> None:
    source = ["train"] * 80 + ["val"] * 20
    labels = (["happy", "sad"] * 50)[:100]
    groups = np.arange(100) // 2  # pairs of near-duplicates
    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    splits = predefined_splits(source, groups, labels, ratios, seed=0)
    assert (splits[80:] == "val").all()
    assert (splits[:80] != "val").all()
    assert (splits == "test").sum() == pytest.approx(8, abs=2)
    assert pd.DataFrame({"g": groups, "s": splits}).groupby("g")["s"].nunique().max() == 1
    with pytest.raises(DataError, match="have no predefined split"):
        predefined_splits(["train", ""], np.arange(2), ["happy", "sad"], ratios, seed=0)


def test_leak_audit_counts_cross_split_pairs_per_split_pair() -> None:
    splits = ["train", "train", "val", "test", "val"]
    near = np.array([[0, 1], [0, 2], [1, 3], [2, 4], [3, 4]])
    assert leak_audit(splits, near) == {"train-val": 1, "train-test": 1, "val-test": 1}
    assert leak_audit(splits, np.empty((0, 2), dtype=int)) == {
        "train-val": 0,
        "train-test": 0,
        "val-test": 0,
    }


@pytest.mark.parametrize(
    ("strategy", "targets"),
    [("max", [100, 100, 100]), ("mean", [54, 54, 54]), ("none", [100, 40, 21]), (60, [60, 60, 60])],
)
def test_class_targets(strategy: str | int, targets: list[int]) -> None:
    assert list(class_targets({"a": 100, "b": 40, "c": 21}, strategy).values()) == targets


def test_plan_respects_the_per_image_cap_and_says_when_it_binds() -> None:
    plans = {p.label: p for p in plan_classes({"a": 100, "b": 40, "c": 10}, "max", 4, 0.02)}
    assert (plans["a"].variants, plans["a"].after, plans["a"].cap_binds) == (0, 100, False)
    assert (plans["b"].variants, plans["b"].after, plans["b"].within_tolerance) == (60, 100, True)
    assert (plans["c"].variants, plans["c"].after) == (40, 50)
    assert plans["c"].cap_binds
    assert not plans["c"].within_tolerance


def test_variants_cycle_through_originals_evenly() -> None:
    train = pd.DataFrame({"path": [f"p{i}" for i in range(7)], "label": ["a"] * 3 + ["b"] * 4})
    plans = plan_classes({"a": 3, "b": 4}, 11, 4, 0.0)
    variants = plan_variants(train, plans, seed=0)
    per_origin = variants.groupby("origin").size()
    assert per_origin[[f"p{i}" for i in range(3)]].tolist() in ([3, 3, 2], [3, 2, 3], [2, 3, 3])
    assert per_origin.max() - per_origin.min() <= 1 + 1  # two classes, each evenly spread
    assert not variants.duplicated(["origin", "variant"]).any()
    assert (variants.groupby("label").size() == pd.Series({"a": 8, "b": 7})).all()


def test_augment_is_seeded_per_variant_and_changes_the_image() -> None:
    image = np.asarray(Image.fromarray((np.arange(48 * 48) % 251).astype(np.uint8).reshape(48, 48)))
    a = augment(image, SPEC, variant_rng(1, "x.png", 1))
    b = augment(image, SPEC, variant_rng(1, "x.png", 1))
    c = augment(image, SPEC, variant_rng(1, "x.png", 2))
    assert a.shape == image.shape
    assert a.dtype == np.uint8
    assert (a == b).all()
    assert (a != c).any()
    assert (a != image).any()


# --------------------------------------------------------------------------- the stage itself


def _smooth_image(rng: np.random.Generator) -> Image.Image:
    """A random low-frequency image (distinct pHash for distinct seeds, like real photos)."""
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8))
    return coarse.resize((48, 48), Image.Resampling.BICUBIC)


def _near_copy(image: Image.Image) -> bytes:
    brighter = Image.eval(image, lambda v: min(255, v + 12))
    buf = io.BytesIO()
    brighter.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _tree(root: Path, leaks: int, seed: int = 0) -> list[Path]:
    """FER-style train/val/test tree; ``leaks`` val images are near copies of train images."""
    rng = np.random.default_rng(seed)
    train_images = []
    for split, n in (("train", 60), ("validation", 12), ("test", 12)):
        for i in range(n):
            label = ["happy", "sad", "angry"][i % 3]
            path = root / split / label / f"{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image = _smooth_image(rng)
            image.save(path)
            if split == "train":
                train_images.append((image, label))
    planted = []
    for k in range(leaks):
        image, label = train_images[k]
        path = root / "validation" / label / f"leak{k}.jpg"
        path.write_bytes(_near_copy(image))
        planted.append(path)
    return planted


def _run_stages(workdir: Path, source: Path, **overrides: object) -> dict:
    classes = ["angry", "happy", "sad"]
    params = {
        "ingest.source": str(source),
        "ingest.classes": classes,
        "synth.expressions": {c: section("synth").expressions[c] for c in classes},
        "ingest.aliases": {},
        "split.mode": "predefined",
        "split.phash_radius": 4,
        "ingest.samples_per_class": 2,
        **overrides,
    }
    (workdir / "params.yaml").write_text(params_text(params))
    for script, extra in (
        (
            "ingest",
            ["--out", "ingest", "--report", "eda.json", "--metrics", "m.json", "--plots", "plots"],
        ),
        (
            "balance",
            [
                "--ingest",
                "ingest",
                "--out",
                "balance",
                "--report",
                "balance.json",
                "--plots",
                "plots",
            ],
        ),
    ):
        done = subprocess.run(
            [sys.executable, str(REPO / "stages" / f"{script}.py"), *extra],
            cwd=workdir,
            env=tool_env(),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    return json.loads((workdir / "balance.json").read_text())


@pytest.mark.slow
def test_leak_audit_finds_planted_near_duplicates_and_can_drop_them(tmp_path: Path) -> None:
    _tree(tmp_path / "data", leaks=3)
    metrics = _run_stages(tmp_path, tmp_path / "data")
    assert metrics["leak_audit"]["cross_split_pairs"] == {
        "train-val": 3,
        "train-test": 0,
        "val-test": 0,
    }
    dropped = _run_stages(
        tmp_path, tmp_path / "data", **{"split.drop_cross_split_duplicates": True}
    )
    assert dropped["leak_audit"]["dropped_from_train"] == 3
    assert dropped["split_sizes"]["val"] == 15
    train = pd.read_csv(tmp_path / "balance" / "train.csv")
    assert train.loc[~train["is_augmented"], "source_split"].eq("train").all()
    assert len(train[~train["is_augmented"]]) == 57


@pytest.mark.slow
def test_leak_audit_reports_zero_on_clean_data(tmp_path: Path) -> None:
    _tree(tmp_path / "data", leaks=0)
    metrics = _run_stages(tmp_path, tmp_path / "data")
    assert metrics["leak_audit"]["cross_split_pairs"] == {
        "train-val": 0,
        "train-test": 0,
        "val-test": 0,
    }


@pytest.mark.slow
def test_stage_outputs_are_leak_free_balanced_and_byte_identical(tmp_path: Path) -> None:
    _tree(tmp_path / "data", leaks=0)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    first = _run_stages(
        tmp_path / "a", tmp_path / "data", **{"split.mode": "stratified", "balance.strategy": 40}
    )
    _run_stages(
        tmp_path / "b", tmp_path / "data", **{"split.mode": "stratified", "balance.strategy": 40}
    )
    out_a, out_b = tmp_path / "a" / "balance", tmp_path / "b" / "balance"
    for name in sorted(p.name for p in out_a.iterdir()):
        assert (out_a / name).read_bytes() == (out_b / name).read_bytes(), name

    frames = {
        s: pd.read_csv(out_a / f"{s}.csv", keep_default_na=False) for s in ("train", "val", "test")
    }
    origins = {s: set(f["origin"]) for s, f in frames.items()}
    assert not (origins["train"] & origins["val"])
    assert not (origins["train"] & origins["test"])
    assert not (origins["val"] & origins["test"])
    assert not frames["val"]["is_augmented"].any()
    assert not frames["test"]["is_augmented"].any()
    assert not any(f["is_synthetic"].any() for f in frames.values())
    counts = frames["train"]["label"].value_counts()
    assert (counts >= 40).all()
    assert first["cap_binds"] is None  # no class hit its cap (an empty list is written as null)
    for split, frame in frames.items():
        array = np.load(out_a / f"{split}.npy")
        assert array.shape == (len(frame), 48, 48)
        assert (frame["index"] == np.arange(len(frame))).all()
    aug = frames["train"][frames["train"]["is_augmented"]]
    assert aug["path"].str.contains("#aug").all()
    assert set(aug["origin"]) <= set(frames["train"].loc[~frames["train"]["is_augmented"], "path"])

    (tmp_path / "c").mkdir()
    _run_stages(
        tmp_path / "c",
        tmp_path / "data",
        **{"split.mode": "stratified", "balance.strategy": 40, "split.seed": 7},
    )
    other = pd.read_csv(tmp_path / "c" / "balance" / "test.csv")
    assert set(other["origin"]) != origins["test"]
