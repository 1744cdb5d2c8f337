"""`emotion predict`: every face in photos, folders and videos, through the command itself."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from emotion.serve import ServeSettings, create_app
from emotion.serve.faces import merge, tiles
from emotion.vision.facedetect import Face

from .serve_fixtures import CLASSES, FACE_MODEL, astronaut, encode, export_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """photos/ (one face, two faces side by side, no face, a note, a broken JPEG) + a video."""
    root = tmp_path_factory.mktemp("inputs")
    photos = root / "photos"
    (photos / "group").mkdir(parents=True)
    photo = astronaut()
    photo.save(photos / "one.jpg", quality=95)
    pair = Image.new("RGB", (1024, 512), "white")
    pair.paste(photo, (0, 0))
    pair.paste(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    pair.save(photos / "group" / "two.png")
    Image.new("RGB", (300, 200), "gray").save(photos / "empty.png")
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.jpg").write_bytes(encode(photo, "JPEG")[:300])
    writer = cv2.VideoWriter(
        str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512)
    )
    frame = np.asarray(photo)[:, :, ::-1]
    for i in range(30):  # 3 s at 10 frames/s, the face drifting right
        writer.write(np.ascontiguousarray(np.roll(frame, 3 * i, axis=1)))
    writer.release()
    (root / "truncated.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a whole video")
    return root


def emotion_predict(model_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "emotion.tools.cli", "predict", "--model-dir", str(model_dir),
           "--face-model", str(FACE_MODEL), *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def records(done: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_face_of_photos_in_a_folder_and_of_sampled_video_frames(
    model_dir: Path, inputs: Path
) -> None:
    done = emotion_predict(
        model_dir, str(inputs / "photos"), str(inputs / "clip.avi"), "--fps", "2"
    )
    rows = records(done)
    by_source = {}
    for row in rows:
        by_source.setdefault(Path(row["source"]).name, []).append(row)
    two = by_source["two.png"]
    assert len(two) >= 2
    lefts = sorted(r["box"]["x"] for r in two)
    assert lefts[0] < 512 <= lefts[-1]  # one face in each half
    assert [r["face"] for r in two] == list(range(len(two)))
    for row in two:
        assert list(row["probabilities"]) == list(CLASSES)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert row["predicted_class"] == max(row["probabilities"], key=row["probabilities"].get)
    assert by_source["empty.png"] == [
        {**by_source["empty.png"][0], "note": "no face found", "face": None}
    ]
    video = by_source["clip.avi"]
    assert [r["frame"] for r in video] == [0, 5, 10, 15, 20, 25]
    assert [r["time"] for r in video] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert [r["box"]["x"] for r in video] == sorted(r["box"]["x"] for r in video)  # drifts right
    assert "notes.txt" not in by_source
    summary = done.stderr
    assert "4 image(s) and 6 video frame(s)" in summary
    assert "skipped 1 file(s) in folders" in summary


def test_bad_inputs_are_named_and_the_rest_of_the_batch_runs(model_dir: Path, inputs: Path) -> None:
    done = emotion_predict(
        model_dir, str(inputs / "truncated.mp4"), str(inputs / "photos" / "broken.jpg"),
        str(inputs / "photos" / "one.jpg"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "truncated.mp4: not a video OpenCV can open" in done.stderr
    assert "broken.jpg: " in done.stderr
    assert "error: 2 input(s) could not be read" in done.stderr
    assert "Traceback" not in done.stderr
    rows = records(done)
    assert [Path(r["source"]).name for r in rows] == ["broken.jpg", "one.jpg", "truncated.mp4"]
    assert rows[1]["error"] is None
    assert rows[1]["box"] is not None


def test_csv_has_a_column_per_class_and_matches_the_server(model_dir: Path, inputs: Path) -> None:
    photo = inputs / "photos" / "one.jpg"
    done = emotion_predict(model_dir, str(photo), "--format", "csv")
    assert done.returncode == 0, done.stderr
    (row,) = list(csv.DictReader(io.StringIO(done.stdout)))
    settings = ServeSettings(model_dir=model_dir, face_model=FACE_MODEL)
    with TestClient(create_app(settings)) as client:
        served = client.post("/predict", files={"file": ("one.jpg", photo.read_bytes())}).json()
    for name in CLASSES:
        assert float(row[name]) == pytest.approx(served["predictions"][name], abs=1e-6)
    assert int(row["x"]) == served["face_box"]["x"]


def test_tiles_cover_the_frame_and_merging_keeps_whole_frame_boxes() -> None:
    boxes = tiles(1024, 512)
    covered = np.zeros((512, 1024), bool)
    for left, top, right, bottom in boxes:
        assert right - left == bottom - top
        covered[top:bottom, left:right] = True
    assert covered.all()
    whole = Face(100, 100, 50, 50, 0.6)
    tile_copy, other = Face(102, 98, 48, 52, 0.9), Face(600, 100, 40, 40, 0.8)
    assert merge([tile_copy, other], kept=[whole]) == [whole, other]
