"""The scripts behind docs/benchmarks.md (run as ``python -m benchmarks.<name>``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(result: Any, json_path: Path | None = None) -> None:
    """Print ``result`` as indented JSON, and write the same text to ``json_path`` if given."""
    text = json.dumps(result, indent=2)
    if json_path is not None:
        json_path.write_text(text + "\n", encoding="utf-8")
    print(text)
