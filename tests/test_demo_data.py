"""The procedural demo face generator: determinism, proportions, format mix, mask alignment."""

from __future__ import annotations

from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from emotion.demo_data.dataset import MASKS_DIR, META_FILE, class_quotas, generate_dataset
from emotion.demo_data.expressions import DEMO_CLASSES as CLASSES
from emotion.demo_data.faces import (
    MASK_REGIONS,
    render_face,
    sample_expression,
    sample_identity,
    sample_nuisance,
)
from emotion.demo_data.params import DemoDataParams

from .conftest import section


@pytest.fixture(scope="module")
def spec() -> DemoDataParams:
    return section("demo_data", count=90)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("count", [1, 7, 100, 1000, 3000])
def test_quotas_sum_to_count_and_match_proportions_within_one_point(
    spec: DemoDataParams, count: int
) -> None:
    quotas = class_quotas(count, spec.class_proportions)
    assert sum(quotas.values()) == count
    for c in CLASSES:
        assert abs(quotas[c] / count - spec.class_proportions[c]) <= max(0.01, 1 / count)


def test_same_seed_gives_byte_identical_dataset_whatever_the_worker_count(
    spec: DemoDataParams, tmp_path: Path
) -> None:
    generate_dataset(spec, tmp_path / "a", workers=1)
    generate_dataset(spec, tmp_path / "b", workers=2)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert len([k for k in a if not k.startswith(("_", MASKS_DIR))]) == spec.count
    assert a == b


def test_different_seed_gives_different_images(spec: DemoDataParams, tmp_path: Path) -> None:
    generate_dataset(spec, tmp_path / "a")
    generate_dataset(spec.model_copy(update={"seed": spec.seed + 1}), tmp_path / "b")
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    shared = set(a) & set(b)
    assert sum(a[k] == b[k] for k in shared) == 0


def test_written_dataset_has_images_masks_and_metadata(
    spec: DemoDataParams, tmp_path: Path
) -> None:
    counts = generate_dataset(spec, tmp_path / "demo")
    assert counts == class_quotas(spec.count, spec.class_proportions)
    meta = pd.read_csv(tmp_path / "demo" / META_FILE)
    assert len(meta) == spec.count
    for row in meta.itertuples():
        image_path = tmp_path / "demo" / row.path
        mask_path = (tmp_path / "demo" / MASKS_DIR / row.path).with_suffix(".png")
        with Image.open(image_path) as im, Image.open(mask_path) as mk:
            assert im.mode == "L"
            assert im.size == mk.size == (spec.image_size, spec.image_size)
            assert im.format == ("JPEG" if row.format == "jpg" else "PNG")
            assert set(np.unique(np.asarray(mk))) <= {0, *MASK_REGIONS.values()}
        assert image_path.parent.name == row.label


def test_format_mix_follows_jpeg_fraction(spec: DemoDataParams, tmp_path: Path) -> None:
    counts = generate_dataset(spec.model_copy(update={"count": 600}), tmp_path / "demo")
    jpegs = len(list((tmp_path / "demo").glob("*/*.jpg")))
    assert sum(counts.values()) == 600
    # binomial(600, 0.35): sd ~ 1.9 points; allow ~3 sd
    assert abs(jpegs / 600 - spec.jpeg_fraction) < 0.06


def _render_pair(seed: int, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ident = sample_identity(rng)
    expr = sample_expression(rng, label, 1.0)
    calm = section("demo_data", noise_std_max=0.0, blur_max=0.0, occlusion_prob=0.0)
    nuis = sample_nuisance(rng, calm)
    with_features, mask = render_face(ident, expr, nuis, 48, np.random.default_rng(0))
    without, _ = render_face(ident, expr, nuis, 48, np.random.default_rng(0), features=False)
    return with_features, without, mask


@pytest.mark.parametrize("label", CLASSES)
def test_mask_covers_what_the_expression_features_change(label: str) -> None:
    inside, changed, area = [], [], []
    for seed in range(12):
        with_features, without, mask = _render_pair(seed, label)
        diff = np.abs(with_features.astype(int) - without.astype(int)) > 10
        changed.append(diff.sum())
        inside.append((diff & (mask > 0)).sum())
        area.append((mask > 0).mean())
        for region, value in MASK_REGIONS.items():
            assert (mask == value).any(), f"{region} missing from mask (seed {seed})"
    assert sum(inside) / sum(changed) > 0.97  # features are drawn where the mask says
    assert 0.04 < np.mean(area) < 0.30  # regions, not the whole face


def test_occluded_pixels_are_removed_from_the_mask() -> None:
    rng = np.random.default_rng(3)
    ident, expr = sample_identity(rng), sample_expression(rng, "happy", 1.0)
    nuis = replace(
        sample_nuisance(rng, section("demo_data", occlusion_prob=0.0)),
        occluder=(0.5, 0.72, 0.5, 0.2, 0.0),  # a bar over the mouth
    )
    _, mask = render_face(ident, expr, nuis, 48, rng)
    bar = np.zeros_like(mask, dtype=bool)
    bar[int((0.72 - 0.1) * 48) : int((0.72 + 0.1) * 48), int(0.25 * 48) : int(0.75 * 48)] = True
    assert not (mask[bar] > 0).any()


def test_classes_overlap_but_are_learnable_from_expression_parameters(spec: DemoDataParams) -> None:
    rng = np.random.default_rng(0)
    x, y = [], []
    for i in range(3000):
        label = CLASSES[i % len(CLASSES)]
        x.append(astuple(sample_expression(rng, label, spec.expression_spread)))
        y.append(label)
    accuracy = cross_val_score(LogisticRegression(max_iter=3000), np.array(x), y, cv=3).mean()
    assert 0.85 < accuracy < 0.97  # learnable, not trivial: classes overlap at the default spread
