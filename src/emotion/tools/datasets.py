"""Putting a real dataset under DVC: unpack or copy it into ``data/external``, then ``dvc add``.

``emotion dataset add fer2013.tar.gz --name fer2013`` leaves ``data/external/fer2013`` tracked by
``data/external/fer2013.dvc`` (staged in git): commit it and ``dvc push``, and a teammate's
``git clone`` + ``dvc pull`` has the same bytes. Where the data has a stable URL,
``dvc import-url URL data/external/NAME`` does the same and records where it came from.

What it refuses, before writing anything: a name that is not a plain folder name; a dataset
that exists or is recorded already (a ``NAME.dvc`` whose data is not pulled yet counts); a
symbolic link in a source folder that leaves the folder, loops or points at a folder; encrypted
archives and compression methods Python cannot read; and more bytes, files or (for archives)
an expansion ratio than :class:`SizeLimits` allows, with the option that raises the limit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emotion.core.errors import EmotionError

EXTERNAL = Path("data/external")
ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
GIB = 2**30


@dataclass(frozen=True)
class SizeLimits:
    """The most a dataset may hold: bytes, files, and bytes unpacked per archive byte."""

    max_bytes: int = 16 * GIB
    max_files: int = 1_000_000
    max_ratio: float = 100.0  #: image archives barely compress; archive bombs expand 1000x+

    def check(self, source: Path, total: int, count: int, packed: int | None = None) -> None:
        """EmotionError naming the first limit ``total`` bytes in ``count`` files exceed."""
        if count > self.max_files:
            raise EmotionError(
                f"{source}: {count:,} files, over the limit of {self.max_files:,};"
                " raise it with --max-files if the dataset really is that large"
            )
        if total > self.max_bytes:
            raise EmotionError(
                f"{source}: {total / GIB:.2f} GiB, over the limit of"
                f" {self.max_bytes / GIB:g} GiB; raise it with --max-gb if that is expected"
            )
        if packed and total > self.max_ratio * packed:
            raise EmotionError(
                f"{source}: unpacks to {total:,} bytes from {packed:,} ({total / packed:.0f}x),"
                f" over the limit of {self.max_ratio:g}x for an archive of images; raise it"
                " with --max-ratio if you trust the archive"
            )


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVES)


def _zip_members(archive: zipfile.ZipFile, source: Path) -> tuple[int, int]:
    total = count = 0
    for info in archive.infolist():
        if info.flag_bits & 0x1:
            raise EmotionError(f"{source}: {info.filename} is encrypted; decrypt the archive first")
        if info.compress_type not in ZIP_METHODS:
            raise EmotionError(
                f"{source}: {info.filename} uses compression method {info.compress_type}, which"
                " Python cannot read (e.g. Deflate64); re-pack it with plain deflate"
            )
        if not info.is_dir():
            total, count = total + info.file_size, count + 1
    return total, count


def _tar_members(archive: tarfile.TarFile) -> tuple[int, int]:
    members = [m for m in archive.getmembers() if m.isfile()]
    return sum(m.size for m in members), len(members)


def _unpack(archive: Path, into: Path, limits: SizeLimits) -> Path:
    """Unpack ``archive`` into ``into`` (after checking its declared sizes against ``limits``);
    its single top-level folder if it has one."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                limits.check(archive, *_zip_members(zf, archive), archive.stat().st_size)
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                limits.check(archive, *_tar_members(tf), archive.stat().st_size)
                tf.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise EmotionError(f"{archive}: cannot unpack ({exc}); is it a complete archive?") from None
    except NotImplementedError as exc:
        raise EmotionError(f"{archive}: cannot unpack ({exc}); re-pack it as .tar.gz") from None
    entries = [p for p in into.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def _folder_files(root: Path, limits: SizeLimits) -> list[tuple[Path, Path]]:
    """(relative path, file to read) of every file under ``root``, links checked, sizes bounded.

    A link to a file inside ``root`` is read as that file; a link that leaves ``root``, dangles,
    loops or names a folder is refused, so nothing outside the tree reaches the dataset.
    """
    root = root.resolve()
    files, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in [*dirnames, *filenames]:
            path = here / name
            if not path.is_symlink():
                continue
            try:
                target = path.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                raise EmotionError(f"{path}: a broken or looping link ({exc}); remove it") from None
            if not target.is_relative_to(root):
                raise EmotionError(
                    f"{path}: links to {target}, outside {root}; copy the file in or remove"
                    " the link"
                )
            if target.is_dir():
                raise EmotionError(f"{path}: links to a folder, which is not followed; remove it")
        for name in filenames:
            path = here / name
            target = path.resolve()
            if not target.is_file():
                raise EmotionError(f"{path}: not a regular file; remove it from the dataset")
            total += target.stat().st_size
            files.append((path.relative_to(root), target))
            limits.check(root, total, len(files))
    return files


def _copy_folder(source: Path, dest: Path, limits: SizeLimits) -> None:
    for rel, target in _folder_files(source, limits):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target, dest / rel)
    dest.mkdir(exist_ok=True)


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise EmotionError(f"`{' '.join(cmd)}` failed: {(done.stderr or done.stdout).strip()}")


def _destination(source: Path, name: str, project: Path) -> Path:
    """``data/external/<name>[.csv]`` after checking the source and that nothing is there."""
    if not source.exists():
        raise EmotionError(f"{source}: not found; give an archive, a folder or a .csv file")
    if not NAME.fullmatch(name):
        raise EmotionError(
            f"dataset name {name!r}: use a plain folder name such as 'fer2013' (letters, digits,"
            " '.', '_', '-'; at most 64 characters)"
        )
    suffix = ".csv" if source.is_file() and source.suffix.lower() == ".csv" else ""
    if source.is_file() and not suffix and not _is_archive(source):
        raise EmotionError(f"{source}: expected {', '.join(ARCHIVES)}, a folder or a .csv file")
    dest = project / EXTERNAL / f"{name}{suffix}"
    record = dest.with_name(f"{dest.name}.dvc")
    if record.exists():
        raise EmotionError(
            f"{record}: already records a dataset named {name!r} (`dvc pull {record}` fetches"
            f" it); to replace it, `dvc remove {record}` first, or choose another --name"
        )
    if dest.exists() or dest.is_symlink():
        raise EmotionError(
            f"{dest}: already exists; remove it (`dvc remove {dest}.dvc`) or choose another --name"
        )
    return dest


def add_dataset(
    source: Path, name: str, project: Path = Path(), limits: SizeLimits = SizeLimits()
) -> Path:
    """Put ``source`` (an archive, a folder or a FER2013-style ``.csv``) at
    ``data/external/<name>`` and track it with ``dvc add``; returns the ``.dvc`` file.

    Refuses what the module docstring lists, and leaves nothing behind when it fails.
    """
    source = Path(source)
    dest = _destination(source, name, project)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        staged = Path(tmp) / "data"
        if dest.suffix == ".csv":
            limits.check(source, source.stat().st_size, 1)
            shutil.copy2(source, staged)
        elif source.is_dir():
            _copy_folder(source, staged, limits)
        else:
            staged.mkdir()
            staged = _unpack(source, staged, limits)
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
