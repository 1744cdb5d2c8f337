"""Pinned model files the pipeline and the server read, fetched from PyPI by the stage ``assets``.

mediapipe 1.2 ships no model files. The short-range BlazeFace face detector (serving, synthesis
QC) and the 468-point face mesh (facial regions for the explain stage) are members of the
``mediapipe==0.10.21`` wheel on PyPI (the one registry every machine that runs this project
reaches), each checked against a pinned SHA-256. As DVC stage outputs they are cached, pushed
and pulled like any other, so ``dvc exp run --temp`` and queued experiments find them in a clean
checkout.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from emotion.core.atomic import write_bytes
from emotion.core.errors import EmotionError
from emotion.core.hashing import sha256_bytes, sha256_file

WHEEL_REQUIREMENT = "mediapipe==0.10.21"


@dataclass(frozen=True)
class PinnedMember:
    """A file inside the pinned mediapipe wheel and its SHA-256."""

    member: str
    sha256: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name


FACE_DETECTOR = PinnedMember(
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
)
FACE_MESH = PinnedMember(
    "mediapipe/modules/face_landmark/face_landmark.tflite",
    "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
)
PINNED = (FACE_DETECTOR, FACE_MESH)  #: every model file the stage ``assets`` fetches
FACE_MODEL_FILE = FACE_DETECTOR.name
DEFAULT_FACE_MODEL = Path("assets") / FACE_MODEL_FILE  #: where the ``assets`` stage puts it


def fetch_models(wanted: Mapping[Path, PinnedMember]) -> list[Path]:
    """Put each pinned member at its destination (one wheel download for all missing ones)."""
    missing = {
        Path(dest): pin
        for dest, pin in wanted.items()
        if not (Path(dest).is_file() and sha256_file(Path(dest)) == pin.sha256)
    }
    if missing:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _download_wheel(Path(tmp), ", ".join(str(dest) for dest in missing))
            with zipfile.ZipFile(wheel) as archive:
                blobs = {dest: archive.read(pin.member) for dest, pin in missing.items()}
        for dest, data in blobs.items():
            if sha256_bytes(data) != missing[dest].sha256:
                raise EmotionError(
                    f"{missing[dest].member} in {WHEEL_REQUIREMENT} has an unexpected SHA-256"
                )
            write_bytes(dest, data)
    return [Path(dest) for dest in wanted]


def fetch_face_model(dest: Path = DEFAULT_FACE_MODEL) -> Path:
    """Put the pinned BlazeFace model at ``dest`` (no-op when it is already there and intact)."""
    return fetch_models({dest: FACE_DETECTOR})[0]


def _download_wheel(folder: Path, destinations: str) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    cmd += ["--disable-pip-version-check", "--dest", str(folder), WHEEL_REQUIREMENT]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(folder.glob("mediapipe-*.whl"))
    if done.returncode != 0 or not wheels:
        raise EmotionError(
            f"could not download {WHEEL_REQUIREMENT} for {destinations}: "
            f"{done.stderr.strip()[-500:]}; place the files there by hand"
        )
    return wheels[0]
