"""Ingest: folder trees and FER2013 CSVs, label mapping, verification, duplicates, EDA."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emotion.core.errors import DataError
from emotion.data.eda import class_distribution, eda_metrics
from emotion.data.ingest import ingest
from emotion.data.labels import LabelMap
from emotion.data.manifest import MANIFEST_COLUMNS, read_manifest, write_manifest

from .conftest import image_bytes, section

CLASSES = section("ingest").classes
LABELS = LabelMap(CLASSES, {"fear": "fearful", "surprise": "surprised"}, ["disgust", "contempt"])


def _run(source: Path, tmp_path: Path, on_corrupt: str = "fail"):
    return ingest(
        source, LABELS, on_corrupt=on_corrupt, scratch=tmp_path / "scratch", root=tmp_path
    )


def _plant_corrupt_files(root: Path) -> dict[str, Path]:
    good_jpeg = image_bytes(99, "JPEG", size=48)
    files = {
        "truncated": root / "happy" / "truncated.jpg",
        "empty": root / "sad" / "empty.png",
        "text": root / "angry" / "notes.png",
    }
    files["truncated"].write_bytes(good_jpeg[: len(good_jpeg) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not an image\n")
    return files


def test_folder_tree_builds_manifest_with_aliases_and_drops(
    make_tree: Callable, tmp_path: Path
) -> None:
    root = make_tree({"happy": 4, "fear": 3, "Surprise": 2, "disgust": 5, "neutral": 1})
    result = _run(root, tmp_path)
    df = result.manifest
    assert list(df.columns) == list(MANIFEST_COLUMNS)
    assert df["label"].value_counts().to_dict() == {
        "happy": 4,
        "fearful": 3,
        "surprised": 2,
        "neutral": 1,
    }
    assert result.dropped == {"disgust": 5}
    assert set(df["raw_label"]) == {"happy", "fear", "Surprise", "neutral"}
    assert df["path"].is_monotonic_increasing
    assert all((tmp_path / p).is_file() for p in df["path"])  # project-relative paths
    assert set(df["format"]) == {"png", "jpeg"}
    assert (df["split"] == "").all()


def test_fer_style_split_folders_are_recognised_at_any_depth(
    make_tree: Callable, tmp_path: Path
) -> None:
    root = make_tree(
        {"fer/train/happy": 2, "fer/validation/happy": 1, "fer/test/sad": 1, "fer/val/angry": 1}
    )
    df = _run(root, tmp_path).manifest
    assert df.groupby("split").size().to_dict() == {"train": 2, "val": 2, "test": 1}


def test_corrupt_files_fail_fast_naming_every_one(make_tree: Callable, tmp_path: Path) -> None:
    root = make_tree({"happy": 2, "sad": 2, "angry": 2})
    files = _plant_corrupt_files(root)
    with pytest.raises(DataError) as err:
        _run(root, tmp_path)
    message = str(err.value)
    for path in files.values():
        assert path.name in message
    assert "empty file" in message
    assert "truncated" in message
    assert "not a recognised image" in message
    assert "on_corrupt: skip" in message  # tells the user what to do


def test_skip_mode_quarantines_corrupt_files_and_keeps_the_rest(
    make_tree: Callable, tmp_path: Path
) -> None:
    root = make_tree({"happy": 2, "sad": 2, "angry": 2})
    files = _plant_corrupt_files(root)
    result = _run(root, tmp_path, on_corrupt="skip")
    assert len(result.manifest) == 6
    quarantined = {Path(p).name for p in result.quarantine["path"]}
    assert quarantined == {p.name for p in files.values()}
    assert result.quarantine["reason"].str.len().gt(0).all()


def test_unknown_class_folder_lists_known_classes_and_aliases(
    make_tree: Callable, tmp_path: Path
) -> None:
    root = make_tree({"happy": 1, "bored": 2})
    with pytest.raises(DataError) as err:
        _run(root, tmp_path)
    message = str(err.value)
    assert "'bored'" in message
    for name in [*CLASSES, "fear", "surprise", "disgust"]:
        assert name in message
    assert "ingest.aliases" in message


def test_image_outside_any_class_folder_is_reported(make_tree: Callable, tmp_path: Path) -> None:
    root = make_tree({"happy": 1})
    (root / "stray.png").write_bytes(image_bytes(5))
    with pytest.raises(DataError, match=r"stray\.png: image is not inside a class folder"):
        _run(root, tmp_path)


def test_missing_source_says_which_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ingest.source: .*does not exist"):
        _run(tmp_path / "nope", tmp_path)


def test_exact_duplicates_and_label_conflicts_are_flagged(
    make_tree: Callable, tmp_path: Path
) -> None:
    root = make_tree({"happy": 2, "sad": 1, "angry": 1})
    (root / "happy" / "copy.png").write_bytes((root / "happy" / "img000.png").read_bytes())
    (root / "sad" / "conflict.png").write_bytes((root / "angry" / "img000.png").read_bytes())
    df = _run(root, tmp_path).manifest
    dup_rows = df[df["duplicate_of"] != ""]
    # each extra copy points at the first path (sorted) with the same bytes
    assert dict(zip(dup_rows["path"], dup_rows["duplicate_of"], strict=True)) == {
        "raw/happy/img000.png": "raw/happy/copy.png",
        "raw/sad/conflict.png": "raw/angry/img000.png",
    }
    assert df.loc[df["label_conflict"], "label"].tolist() == ["angry", "sad"]
    metrics = eda_metrics(df, CLASSES, dropped={}, quarantined=0, ignored_files=0)
    assert metrics["duplicates"] == {"extra_copies": 2, "groups": 2, "label_conflict_groups": 1}


def test_masks_mirror_is_picked_up_and_other_files_are_ignored(
    make_tree: Callable, tmp_path: Path
) -> None:
    root = make_tree({"happy": 2})
    (root / "_masks" / "happy").mkdir(parents=True)
    (root / "_masks" / "happy" / "img000.png").write_bytes(image_bytes(1))
    (root / "README.txt").write_text("about this dataset")
    result = _run(root, tmp_path)
    masks = dict(
        zip(
            result.manifest["path"].str.rsplit("/", n=1).str[-1],
            result.manifest["mask_path"],
            strict=True,
        )
    )
    assert masks["img000.png"].endswith("_masks/happy/img000.png")
    assert masks["img001.png"] == ""
    assert result.ignored_files == 1


def _fer_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("emotion,pixels,Usage\n" + "".join(f"{e},{p},{u}\n" for e, p, u in rows))
    return path


def _pixels(seed: int) -> str:
    return " ".join(map(str, np.random.default_rng(seed).integers(0, 256, 48 * 48)))


def test_fer2013_csv_gives_the_same_manifest_schema(make_tree: Callable, tmp_path: Path) -> None:
    csv = _fer_csv(
        tmp_path / "fer2013.csv",
        [
            ("3", _pixels(1), "Training"),
            ("2", _pixels(2), "PublicTest"),
            ("1", _pixels(3), "Training"),
            ("6", _pixels(4), "PrivateTest"),
            ("5", _pixels(5), "Training"),
        ],
    )
    from_csv = _run(csv, tmp_path)
    from_tree = _run(make_tree({"train/happy": 1}), tmp_path)
    assert list(from_csv.manifest.columns) == list(from_tree.manifest.columns)
    assert list(from_csv.manifest.dtypes) == list(from_tree.manifest.dtypes)
    df = from_csv.manifest.sort_values("label")
    assert df[["label", "split"]].values.tolist() == [
        ["fearful", "val"],
        ["happy", "train"],
        ["neutral", "test"],
        ["surprised", "train"],
    ]
    assert from_csv.dropped == {"disgust": 1}
    assert (df["width"] == 48).all()
    assert (df["mode"] == "L").all()
    row = df[df["label"] == "happy"].iloc[0]
    with Image.open(tmp_path / row["path"]) as im:  # decoded pixels match the CSV
        assert np.asarray(im).ravel().tolist() == list(map(int, _pixels(1).split()))


def test_bad_csv_rows_name_the_line(tmp_path: Path) -> None:
    csv = _fer_csv(
        tmp_path / "fer.csv",
        [("3", _pixels(1), "Training"), ("3", "1 2 3", "Training"), ("9", _pixels(2), "Training")],
    )
    with pytest.raises(DataError) as err:
        _run(csv, tmp_path)
    assert "fer.csv:3: pixels has 3 values" in str(err.value)
    assert "fer.csv:4: emotion '9'" in str(err.value)
    skipped = _run(csv, tmp_path, on_corrupt="skip")
    assert len(skipped.manifest) == 1
    assert len(skipped.quarantine) == 2


def test_csv_without_fer_columns_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "other.csv"
    bad.write_text("label,data\nx,y\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['emotion', 'pixels'\]"):
        _run(bad, tmp_path)


def test_eda_metrics_and_class_distribution(make_tree: Callable, tmp_path: Path) -> None:
    root = make_tree({"happy": 6, "sad": 3, "angry": 2, "fearful": 1, "neutral": 1, "surprised": 1})
    result = _run(root, tmp_path)
    m = eda_metrics(
        result.manifest, CLASSES, dropped={"disgust": 2}, quarantined=1, ignored_files=0
    )
    assert m["total"] == 14
    assert m["classes"]["happy"] == {"count": 6, "percent": 42.86}
    assert m["imbalance_ratio"] == 6.0
    assert m["class_count"]["min"] == 1
    assert m["class_count"]["max"] == 6
    pixels = np.concatenate(
        [
            np.asarray(Image.open(tmp_path / p).convert("L"), float).ravel()
            for p in result.manifest["path"]
        ]
    )
    assert m["pixel_mean"] == pytest.approx(pixels.mean(), abs=0.01)
    assert m["pixel_std"] == pytest.approx(pixels.std(), abs=0.01)
    assert m["dropped"] == {"disgust": 2}
    table = class_distribution(result.manifest, CLASSES)
    assert table.to_dict("list") == {"class": list(CLASSES), "count": [2, 1, 6, 1, 3, 1]}


def test_manifest_round_trips_through_csv(make_tree: Callable, tmp_path: Path) -> None:
    df = _run(make_tree({"happy": 3, "sad": 2}), tmp_path).manifest
    write_manifest(df, tmp_path / "m.csv")
    back = read_manifest(tmp_path / "m.csv")
    pd.testing.assert_frame_equal(
        back.drop(columns=["pixel_mean", "pixel_std"]),
        df.drop(columns=["pixel_mean", "pixel_std"]),
        check_dtype=False,
    )
    buf = io.StringIO((tmp_path / "m.csv").read_text())
    assert buf.readline().strip() == ",".join(MANIFEST_COLUMNS)
