"""Reading the files one stage hands to the next, with errors that name the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emotion.core.errors import DataError


def read_json(path: Path, what: str, remedy: str) -> Any:
    """The JSON document at ``path``. A missing or malformed file is a :class:`DataError` that
    names ``path``, ``what`` it should hold and the ``remedy`` ("run `dvc repro evaluate`")."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found; {remedy}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable {what} ({exc}); {remedy}") from None
