"""`emotion dataset add`: bad input is refused with a clear message and leaves nothing behind."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest

from emotion.core.errors import EmotionError
from emotion.tools.datasets import add_dataset

from .conftest import image_bytes


def _archive(tmp_path: Path) -> Path:
    (tmp_path / "src/faces/happy").mkdir(parents=True)
    (tmp_path / "src/faces/happy/0.png").write_bytes(image_bytes(1))
    archive = tmp_path / "faces.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "src/faces", arcname="faces")
    return archive


@pytest.mark.parametrize(
    ("source", "name", "message"),
    [
        ("missing.tar.gz", "faces", "missing.tar.gz: not found"),
        ("notes.txt", "faces", "notes.txt: expected .tar.gz, .tgz, .tar, .zip"),
        ("faces.tar.gz", "../faces", "use a plain folder name"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, source: str, name: str, message: str) -> None:
    _archive(tmp_path)
    (tmp_path / "notes.txt").write_text("not a dataset")
    with pytest.raises(EmotionError, match=re.escape(message)):
        add_dataset(tmp_path / source, name, project=tmp_path / "project")
    assert not (tmp_path / "project/data/external").exists() or not any(
        (tmp_path / "project/data/external").iterdir()
    )


def test_a_corrupt_archive_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "faces.tar.gz"
    broken.write_bytes(_archive(tmp_path).read_bytes()[:100])
    with pytest.raises(EmotionError, match=r"faces\.tar\.gz: cannot unpack"):
        add_dataset(broken, "faces", project=tmp_path / "project")
    assert list((tmp_path / "project/data/external").iterdir()) == []


def test_an_existing_dataset_is_never_overwritten(tmp_path: Path) -> None:
    existing = tmp_path / "project/data/external/faces"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(EmotionError, match="already exists"):
        add_dataset(_archive(tmp_path), "faces", project=tmp_path / "project")
    assert (existing / "keep.txt").read_text() == "mine"


def test_when_dvc_add_fails_the_copy_is_removed(tmp_path: Path) -> None:
    """Outside a DVC project `dvc add` fails: the error says so and the unpacked copy is gone."""
    project = tmp_path / "project"
    project.mkdir()
    with pytest.raises(EmotionError, match="dvc add data/external/faces"):
        add_dataset(_archive(tmp_path), "faces", project=project)
    assert list((project / "data/external").iterdir()) == []
