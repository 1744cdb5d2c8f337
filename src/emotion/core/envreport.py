"""What a run ran on: package versions, device, git revision (for provenance files)."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

import torch

PACKAGES = (
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "timm",
    "mediapipe",
    "onnxruntime",
    "numpy",
    "pillow",
    "imagehash",
)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def env_report(device: torch.device | None = None) -> dict[str, Any]:
    """Versions, platform, accelerator and the git revision of the working tree."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    status = _git("status", "--porcelain")
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "device": str(device or "cpu"),
        "cuda": torch.version.cuda if cuda else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torch_threads": torch.get_num_threads(),
        "git_revision": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }
