"""HTTP serving of the exported ONNX model: API, web page and the ``emotion serve`` command.

``create_app`` is imported on first use (PEP 562), so the ``emotion`` command can read the
serving defaults from :class:`ServeSettings` without loading FastAPI and ONNX Runtime.
"""

from typing import Any

from emotion.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from emotion.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'emotion.serve' has no attribute {name!r}")
