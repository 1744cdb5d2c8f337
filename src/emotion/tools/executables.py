"""Command-line tools the ``emotion`` commands run (``dvc``), found where this Python lives."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def tool(name: str) -> str:
    """``name`` from the running interpreter's environment, else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else shutil.which(name) or name
