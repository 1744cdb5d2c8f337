"""HTTP serving of the exported ONNX model: API, web page and the ``emotion serve`` command."""

from emotion.serve.app import create_app
from emotion.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
