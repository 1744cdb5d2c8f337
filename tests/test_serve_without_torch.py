"""`emotion serve` needs no PyTorch, timm or DVC: the ``serve`` extra installs only what it (and
`emotion predict`) runs.

The fast check runs the command with those packages blocked (an import of them fails); the slow
one installs ``.[serve]`` into a fresh virtual environment from the package index, serves the
released model from there and runs `emotion predict` on a photo.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from emotion.serve.settings import RELEASED_MODEL

from .serve_fixtures import CLASSES, FACE_MODEL, REPO, astronaut, emotion_serve, encode

RELEASED = REPO / RELEASED_MODEL
HEAVY = ("torch", "timm", "dvc")
#: Python that makes ``import torch`` (timm, dvc) fail, then runs the ``emotion`` command.
BLOCKED = (
    "import sys\n"
    f"for name in {HEAVY!r}:\n"
    "    sys.modules[name] = None  # `import name` now raises ImportError\n"
)
BLOCKED_EMOTION = (sys.executable, "-c", BLOCKED + "from emotion.tools.cli import main\nmain()\n")


def check_serving(url: str) -> None:
    """/health answers, and /predict finds and classifies the face of a real photo."""
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    files = {"file": ("astronaut.png", encode(astronaut()), "image/png")}
    response = httpx.post(f"{url}/predict?explain=true", files=files, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["face_detected"] is True
    assert body["predicted_class"] in CLASSES
    assert body["saliency"]["grid"] > 1
    assert httpx.get(f"{url}/docs", timeout=10).status_code == 200


def test_the_block_really_stops_those_imports() -> None:
    for name in HEAVY:
        done = subprocess.run(
            [sys.executable, "-c", BLOCKED + f"import {name}"], capture_output=True, text=True
        )
        assert done.returncode != 0
        assert "ImportError" in done.stderr or "ModuleNotFoundError" in done.stderr


def test_serve_runs_with_torch_timm_and_dvc_blocked() -> None:
    args = ("--model-dir", str(RELEASED), "--face-model", str(FACE_MODEL))
    with emotion_serve(*args, command=BLOCKED_EMOTION) as (url, _):
        check_serving(url)


def package_source(dest: Path) -> Path:
    """What pip needs to build this project, without the checkout's build leftovers."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", dest / "src", ignore=ignore)
    return dest


@pytest.mark.slow
def test_the_serve_extra_serves_the_released_model_without_torch(tmp_path: Path) -> None:
    """`pip install -c requirements.txt '.[serve]'` in a fresh venv (from the package index,
    with pip's cache): no torch there, and `emotion serve` answers from it."""
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    source = package_source(tmp_path / "project")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    install = [*pip, "-c", str(REPO / "requirements.txt"), f"{source}[serve]"]
    subprocess.run(install, check=True, timeout=1200)
    for name in HEAVY:
        found = subprocess.run([str(python), "-c", f"import {name}"], capture_output=True)
        assert found.returncode != 0, f"{name} is installed by the serve extra"
    emotion = str(env / "bin" / "emotion")
    args = ("--model-dir", str(RELEASED), "--face-model", str(FACE_MODEL))
    with emotion_serve(*args, command=(emotion,), cwd=tmp_path) as (url, _):
        check_serving(url)
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(encode(astronaut()))
    done = subprocess.run(
        [emotion, "predict", str(photo), *args], capture_output=True, text=True, check=True
    )
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["box"] is not None
    assert max(record["probabilities"], key=record["probabilities"].get) in CLASSES
