"""What ``emotion predict`` reads: image files, folders (recursively) and sampled video frames."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from emotion.core.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg"})


@dataclass(frozen=True)
class Inputs:
    """The files to read, and how many files under the given folders were neither."""

    images: list[Path]
    videos: list[Path]
    skipped: int

    def __len__(self) -> int:
        return len(self.images) + len(self.videos)


def collect(paths: list[Path]) -> Inputs:
    """Images and videos among ``paths`` and under the folders in it (sorted, hidden skipped).

    A file named on the command line is kept whatever its suffix (decoding says what is wrong
    with it); inside folders only image and video suffixes count, the rest are skipped.
    """
    images: list[Path] = []
    videos: list[Path] = []
    skipped = 0
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: not found; give image or video files, or folders of them")
        files = [path] if path.is_file() else _walk(path)
        for file in files:
            suffix = file.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                videos.append(file)
            elif suffix in IMAGE_SUFFIXES or file == path:
                images.append(file)
            else:
                skipped += 1
    return Inputs(images, videos, skipped)


def _walk(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return found


@dataclass(frozen=True)
class Frame:
    """One sampled video frame: its index, time in seconds and RGB pixels."""

    index: int
    time: float
    image: Image.Image


def _opencv() -> Any:
    """OpenCV (a mediapipe dependency: it decodes video containers and codecs), with FFmpeg's
    own messages off: errors here name the file instead."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    return cv2


def video_frames(path: Path, fps: float) -> Iterator[Frame]:
    """Frames of ``path`` sampled at ``fps`` per second of video (every frame if it has fewer).

    Raises DataError naming the file when OpenCV cannot open or read it.
    """
    cv2 = _opencv()
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(f"{path}: not a video OpenCV can open (corrupt, or an unknown codec)")
        native = capture.get(cv2.CAP_PROP_FPS) or 0.0
        if native <= 0:
            raise DataError(f"{path}: the video reports no frame rate; re-encode it")
        index = taken = 0  # frames read, samples yielded: sample k is the first frame at >= k/fps
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            time = index / native
            if time * fps + 1e-9 >= taken:
                taken = int(time * fps + 1e-9) + 1
                yield Frame(index, round(time, 3), Image.fromarray(bgr[:, :, ::-1].copy()))
            index += 1
        if index == 0:
            raise DataError(f"{path}: no frame could be decoded; is the file complete?")
    finally:
        capture.release()


def video_frame_count(path: Path, fps: float) -> int | None:
    """How many frames ``video_frames`` will yield, from the container's header (or None)."""
    cv2 = _opencv()
    capture = cv2.VideoCapture(str(path))
    try:
        frames, native = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    if frames <= 0 or native <= 0:
        return None
    return int(min(frames, max(1, frames / native * fps + 1)))
