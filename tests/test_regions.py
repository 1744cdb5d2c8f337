"""Facial regions from the face mesh: soundness on demo faces, unfit faces counted, the
expected-patterns table, and the stage's outputs."""

from __future__ import annotations

import io
import json
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emotion.core.errors import ConfigError, DataError
from emotion.data.packed import save_array
from emotion.demo_data.dataset import make_sample
from emotion.demo_data.faces import MASK_REGIONS
from emotion.explain.params import Region
from emotion.explain.patterns import (
    ProbeRegions,
    ablation_drops,
    check_expected_classes,
    pattern_table,
    region_shares,
)
from emotion.regions.checks import compare_with_source
from emotion.regions.fitting import fit_regions
from emotion.regions.masks import REGION_LABELS, REGIONS, region_labels, region_mask
from emotion.regions.mesh import FaceMesh
from emotion.regions.regionset import RegionSet
from emotion.stages.regions import run_regions

from .conftest import REPO, section

MESH_FILE = REPO / "assets" / "face_landmark.tflite"
DEMO = section("demo_data")
CLASSES = ["angry", "fearful", "happy", "neutral", "sad", "surprised"]


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def _demo_faces(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` demo faces (all classes) and the generator's own region label masks."""
    samples = [make_sample(DEMO, i, CLASSES[i % len(CLASSES)]) for i in range(count)]
    return (
        np.stack([_decode(image) for _, image, _, _ in samples]),
        np.stack([_decode(mask) for _, _, mask, _ in samples]),
    )


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh(MESH_FILE)


def test_demo_mask_codes_are_the_region_labels() -> None:
    """The generator's masks and the landmark masks share label values, so they compare; the
    params schema accepts exactly the regions the masks have."""
    assert {name: REGION_LABELS[name] for name in MASK_REGIONS} == MASK_REGIONS
    assert set(typing.get_args(Region)) == set(REGIONS)


def test_landmark_regions_match_the_generator_masks_on_demo_faces(mesh: FaceMesh) -> None:
    """The landmark path is sound if its regions sit where the generator drew the features.

    Thresholds: at 48 px a brow is ~12x3 px, so a one-pixel disagreement on its edge already
    costs ~0.4 IoU; the generator pads its masks its own way (brow line 2.2x thick, eye ellipse
    1.35x wide, mouth +3.5% of the face). Measured on the demo test split: IoU 0.41 / 0.57 / 0.57
    (brows / eyes / mouth), centroids 0.8-1.5 px apart, against 0.14 / 0.28 / 0.34 for another
    face's masks (what the shared face layout alone gives). The test asks for 3/4 of those IoUs,
    1.4x the other-face baseline and centroids within 2 px.
    """
    images, source = _demo_faces(60)
    regions = fit_regions(mesh, images, [str(i) for i in range(60)], min_score=0.5)
    assert regions.fitted.mean() >= 0.6  # cartoon faces: ~80% fit on the demo test split
    check = compare_with_source(regions.labels, regions.fitted, source)
    for name, low in {"brows": 0.3, "eyes": 0.42, "mouth": 0.42}.items():
        assert check["iou"][name] >= low, (name, check)
        assert check["iou"][name] >= 1.4 * check["iou_other_face"][name], (name, check)
        assert check["centroid_px"][name] <= 2.0, (name, check)
    assert compare_with_source(regions.labels, regions.fitted & False, source) is None


def test_region_masks_cover_every_region_top_to_bottom_at_any_crop_size(mesh: FaceMesh) -> None:
    images, _ = _demo_faces(6)
    fit = next(f for f in map(mesh.fit, images) if f.score > 0.5)
    labels = region_labels(fit.points, (48, 48))
    assert labels.shape == (48, 48)
    assert set(np.unique(labels)) == {0, *REGION_LABELS.values()}
    up = region_labels(fit.points * 2, (96, 96))  # same face at twice the size
    for name in REGIONS:
        small, big = region_mask(labels, name), region_mask(up, name)
        assert small.mean() == pytest.approx(big.mean(), abs=0.01), name
    ys = {name: np.nonzero(region_mask(labels, name))[0].mean() for name in REGIONS}
    assert ys["brows"] < ys["eyes"] < ys["nose"] < ys["mouth"]


def test_a_face_the_mesh_cannot_fit_is_counted_and_named(tmp_path: Path) -> None:
    """Blank and noise crops fail the mesh: the stage counts and lists them, keeps their rows
    (all-zero labels), and the explain side sees them as unfit, not as faces without regions."""
    faces, _ = _demo_faces(4)
    blank = np.full((1, 48, 48), 128, dtype=np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    images = np.concatenate([faces, blank, noise])
    paths = [f"data/raw/x/{i}.png" for i in range(len(images))]
    data = tmp_path / "balance"
    data.mkdir()
    save_array(data / "test.npy", images)
    pd.DataFrame({"path": paths, "label": "happy"}).to_csv(data / "test.csv", index=False)
    out, report = tmp_path / "regions", tmp_path / "regions.json"
    summary = run_regions(section("regions"), data=data, mesh=MESH_FILE, out=out, report=report)
    written = json.loads(report.read_text())
    rows = written.pop("rows")
    assert written == summary
    assert rows == [{"class": "happy", "failed_fraction": summary["failed_fraction"]}]
    assert summary["images"] == 6
    assert set(summary["failed_examples"]) >= {paths[4], paths[5]}
    assert summary["failed"] == summary["images"] - summary["fitted"]
    assert summary["failed_fraction_by_class"] == {"happy": summary["failed_fraction"]}
    assert summary["vs_source_masks"] is None  # no mask_path column: nothing to compare
    loaded = RegionSet.load(out, "test", paths)
    assert not loaded.fitted[4:].any()
    assert not loaded.labels[~loaded.fitted].any()
    assert all(loaded.labels[i].any() for i in np.flatnonzero(loaded.fitted))
    probes = ProbeRegions.build(loaded.labels, loaded.fitted, None)
    assert probes.source == "landmarks"
    assert {4, 5} <= set(probes.unfit.tolist())
    assert len(probes.label_rows) + len(probes.unfit) == 6
    with pytest.raises(DataError, match="rerun the regions stage"):
        RegionSet.load(out, "test", paths[::-1])


def test_a_missing_or_wrong_mesh_model_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.tflite not found: run `make assets`"):
        FaceMesh(tmp_path / "nothing.tflite")
    detector = REPO / "assets" / "face_detection_short_range.tflite"
    with pytest.raises(DataError, match=r"face_detection_short_range\.tflite is not MediaPipe's"):
        FaceMesh(detector)


def test_stored_regions_that_do_not_match_their_split_are_refused(tmp_path: Path) -> None:
    n = 3
    regions = RegionSet(
        [f"{i}.png" for i in range(n)],
        np.zeros((n, 8, 8), np.uint8),
        np.zeros((n, 468, 2), np.float32),
        np.ones(n, np.float32),
        np.ones(n, bool),
    )
    regions.save(tmp_path, "test")
    np.savez_compressed(
        tmp_path / "test.npz",
        labels=regions.labels[:2],
        points=regions.points[:2],
        scores=regions.scores[:2],
    )
    with pytest.raises(DataError, match=r"test\.npz has 2 faces but test\.csv 3"):
        RegionSet.load(tmp_path, "test", regions.paths)


def _labels_with_every_region(n: int) -> np.ndarray:
    labels = np.zeros((n, 20, 20), dtype=np.uint8)
    for j, name in enumerate(REGIONS):
        labels[:, 2 + 3 * j : 4 + 3 * j, 4:16] = REGION_LABELS[name]
    return labels


def test_pattern_table_finds_the_region_a_map_concentrates_on() -> None:
    labels = _labels_with_every_region(4)
    targets = np.array([2, 2, 3, 3])  # two happy, two neutral
    mouth = region_mask(labels, "mouth").astype(float)
    maps = {"gradcam": np.concatenate([mouth[:2] + 0.01, np.ones((2, 20, 20))])}
    drops = np.zeros((4, len(REGIONS)))
    drops[:, REGIONS.index("eyes")] = 0.3
    params = section("explain", methods=["gradcam"])
    table = pattern_table(params, CLASSES, maps, drops, labels, targets)
    happy, neutral = table["classes"]["happy"], table["classes"]["neutral"]
    assert happy["methods"]["gradcam"]["top"] == "mouth"
    assert happy["methods"]["gradcam"]["matches"] is True  # expected: mouth + eyes
    assert happy["ablation"] == {**happy["ablation"], "top": "eyes", "matches": True}
    assert neutral["methods"]["gradcam"]["matches"] is True  # uniform map: balanced
    assert neutral["ablation"]["matches"] is False  # one region carries all the drop
    drops[2:] = [0.5, -0.3, -0.3, -0.3, -0.3]  # mean below 0, yet one region matters
    table = pattern_table(params, CLASSES, maps, drops, labels, targets)
    assert table["classes"]["neutral"]["ablation"]["matches"] is False
    drops[2:] = [0.0, -0.1, -0.2, -0.1, 0.0]  # no region's removal hurts: balanced
    table = pattern_table(params, CLASSES, maps, drops, labels, targets)
    assert table["classes"]["neutral"]["ablation"]["matches"] is True
    assert table["classes"]["sad"] == {"probes": 0, "expected": ["mouth", "eyes"]}
    assert table["matches"] == {"gradcam": "2/2", "ablation": "2/2"}
    share, area = region_shares(maps["gradcam"][2:], labels[2:])
    assert share.sum(1) == pytest.approx(area.sum(1))  # a uniform map's share is the area


def test_expected_regions_naming_an_unknown_class_is_a_config_error() -> None:
    params = section("explain", expected_regions={"happy": ["mouth"], "joyful": ["eyes"]})
    with pytest.raises(ConfigError, match=r"explain\.expected_regions names \['joyful'\]"):
        check_expected_classes(params, CLASSES)
    check_expected_classes(section("explain"), CLASSES)


def test_ablation_drops_measure_the_region_the_model_reads() -> None:
    labels = _labels_with_every_region(3)
    images = np.full((3, 20, 20), 40.0)
    images[region_mask(labels, "brows")] = 250.0
    brows = region_mask(labels[:1], "brows")[0]

    def prob(batch: np.ndarray) -> np.ndarray:  # class 0 = bright brows
        p = batch[:, brows].mean(1) / 255.0
        return np.stack([p, 1 - p], axis=1)

    drops = ablation_drops(prob, images, labels, np.zeros(3, dtype=int), prob(images))
    assert drops.shape == (3, len(REGIONS))
    assert (drops.argmax(1) == REGIONS.index("brows")).all()
    others = np.delete(drops, REGIONS.index("brows"), axis=1)
    assert np.abs(others).max() < 1e-9
