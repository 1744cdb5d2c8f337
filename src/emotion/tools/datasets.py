"""Putting a real dataset under DVC: unpack or copy it into ``data/external``, then ``dvc add``.

``emotion dataset add fer2013.tar.gz --name fer2013`` leaves ``data/external/fer2013`` tracked by
``data/external/fer2013.dvc`` (staged in git): commit it and ``dvc push``, and a teammate's
``git clone`` + ``dvc pull`` has the same bytes. Where the data has a stable URL,
``dvc import-url URL data/external/NAME`` does the same and records where it came from.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from emotion.core.errors import EmotionError

EXTERNAL = Path("data/external")
ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVES)


def _unpack(archive: Path, into: Path) -> Path:
    """Unpack ``archive`` into ``into``; its single top-level folder if it has one."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise EmotionError(f"{archive}: cannot unpack ({exc}); is it a complete archive?") from None
    entries = [p for p in into.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise EmotionError(f"`{' '.join(cmd)}` failed: {(done.stderr or done.stdout).strip()}")


def add_dataset(source: Path, name: str, project: Path = Path()) -> Path:
    """Put ``source`` (an archive, a folder or a FER2013-style ``.csv``) at
    ``data/external/<name>`` and track it with ``dvc add``; returns the ``.dvc`` file.

    Refuses to overwrite an existing dataset, and leaves nothing behind when it fails.
    """
    source = Path(source)
    if not source.exists():
        raise EmotionError(f"{source}: not found; give an archive, a folder or a .csv file")
    if not name or "/" in name or name.startswith("."):
        raise EmotionError(f"dataset name {name!r}: use a plain folder name such as 'fer2013'")
    suffix = ".csv" if source.is_file() and source.suffix.lower() == ".csv" else ""
    if source.is_file() and not suffix and not _is_archive(source):
        raise EmotionError(f"{source}: expected {', '.join(ARCHIVES)}, a folder or a .csv file")
    dest = project / EXTERNAL / f"{name}{suffix}"
    if dest.exists():
        raise EmotionError(
            f"{dest}: already exists; remove it (`dvc remove {dest}.dvc`) or choose another --name"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        staged = Path(tmp) / "data"
        if suffix:
            shutil.copy2(source, staged)
        elif source.is_dir():
            shutil.copytree(source, staged)
        else:
            staged.mkdir()
            staged = _unpack(source, staged)
        staged.rename(dest)
    rel = dest.relative_to(project).as_posix()
    try:
        _run([sys.executable, "-m", "dvc", "add", rel], project)
    except EmotionError:
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        raise
    tracked = [Path(f"{rel}.dvc"), dest.parent.relative_to(project) / ".gitignore"]
    if (project / ".git").exists():  # dvc add writes a .gitignore only where git needs one
        _run(["git", "add", *(p.as_posix() for p in tracked if (project / p).exists())], project)
    return project / tracked[0]
