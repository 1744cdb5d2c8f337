"""`emotion dataset add`: bad input is refused with a clear message and leaves nothing behind."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
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


# ------------------------------------------------- through the `emotion dataset add` command


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty git + DVC project."""
    root = tmp_path / "project"
    root.mkdir()
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return root


def emotion(project: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "emotion.tools.cli", "dataset", "add", *args]
    return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=120)


def refused(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def faces_folder(tmp_path: Path, count: int = 3) -> Path:
    folder = tmp_path / "faces"
    (folder / "happy").mkdir(parents=True)
    for i in range(count):
        (folder / "happy" / f"{i}.png").write_bytes(image_bytes(i))
    return folder


def test_a_record_whose_data_is_not_pulled_is_never_overwritten(
    project: Path, tmp_path: Path
) -> None:
    assert emotion(project, str(faces_folder(tmp_path)), "--name", "faces").returncode == 0
    record = project / "data/external/faces.dvc"
    before = record.read_text()
    shutil.rmtree(project / "data/external/faces")  # a fresh clone before `dvc pull`
    (tmp_path / "faces/happy/3.png").write_bytes(image_bytes(3))
    refused(emotion(project, str(tmp_path / "faces"), "--name", "faces"), "already records")
    assert record.read_text() == before


def test_links_out_of_the_source_folder_are_refused(project: Path, tmp_path: Path) -> None:
    folder = faces_folder(tmp_path)
    secret = tmp_path / "secret.png"
    secret.write_bytes(image_bytes(9))
    (folder / "happy/leak.png").symlink_to(secret)
    refused(emotion(project, str(folder), "--name", "faces"), "outside")
    assert not (project / "data/external/faces").exists()


def test_a_link_inside_the_folder_is_read_as_its_file(project: Path, tmp_path: Path) -> None:
    folder = faces_folder(tmp_path)
    (folder / "happy/again.png").symlink_to(folder / "happy/0.png")
    assert emotion(project, str(folder), "--name", "faces").returncode == 0
    copied = project / "data/external/faces/happy/again.png"
    assert not copied.is_symlink()
    assert copied.read_bytes() == (folder / "happy/0.png").read_bytes()


@pytest.mark.parametrize("link", ["loop", "folder"])
def test_looping_and_folder_links_are_refused(project: Path, tmp_path: Path, link: str) -> None:
    folder = faces_folder(tmp_path)
    if link == "loop":
        (folder / "happy/a.png").symlink_to(folder / "happy/b.png")
        (folder / "happy/b.png").symlink_to(folder / "happy/a.png")
        message = "broken or looping link"
    else:
        (folder / "happy/up").symlink_to(folder)
        message = "links to a folder"
    refused(emotion(project, str(folder), "--name", "faces"), message)


@pytest.mark.parametrize("name", ["faces\nnot-ignored", "_x", "a" * 65, "fa ces", ".hidden"])
def test_names_that_are_not_plain_folder_names_are_refused(
    project: Path, tmp_path: Path, name: str
) -> None:
    refused(emotion(project, str(faces_folder(tmp_path)), f"--name={name}"), "plain folder name")
    assert not (project / "data/external").exists()


def test_limits_on_files_bytes_and_expansion_name_the_option(project: Path, tmp_path: Path) -> None:
    folder = faces_folder(tmp_path, count=5)
    refused(emotion(project, str(folder), "--name", "f", "--max-files", "4"), "--max-files")
    refused(emotion(project, str(folder), "--name", "f", "--max-gb", "1e-6"), "--max-gb")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("faces/happy/0.png", b"\0" * 2_000_000)
    refused(emotion(project, str(bomb), "--name", "f"), "--max-ratio")
    sparse = tmp_path / "sparse.tgz"
    with tarfile.open(sparse, "w:gz") as tf:
        info = tarfile.TarInfo("faces/happy/0.png")
        info.size = 3 * 2**20
        tf.addfile(info, io.BytesIO(b"\0" * info.size))
    refused(emotion(project, str(sparse), "--name", "f", "--max-gb", "0.001"), "--max-gb")
    assert not (project / "data/external/f").exists()


def _patched_zip(tmp_path: Path, *, flag: int = 0, method: int | None = None) -> Path:
    """A stored zip whose headers claim encryption (``flag``) or another ``method``."""
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("faces/happy/0.png", image_bytes(0))
    data = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        data[at + flag_at] |= flag
        if method is not None:
            data[at + flag_at + 2 : at + flag_at + 4] = method.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("patch", "message"),
    [({"flag": 1}, "is encrypted"), ({"method": 9}, "compression method 9")],
)
def test_encrypted_and_deflate64_zips_are_named(
    project: Path, tmp_path: Path, patch: dict, message: str
) -> None:
    refused(emotion(project, str(_patched_zip(tmp_path, **patch)), "--name", "f"), message)
