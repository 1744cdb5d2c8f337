"""What ``emotion serve`` needs to know: model, variant, face policy, input and load limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emotion.assets.model_files import DEFAULT_FACE_MODEL
from emotion.core.errors import ConfigError
from emotion.vision.tta import TTA_VIEWS, TTAMode

VARIANTS = ("fp32", "int8")
DEFAULT_CLIENT_DIR = Path("client")
#: The real-face model this repository ships (``emotion release``; docs/release.md)
RELEASED_MODEL = Path("release/fer2013-v1")


@dataclass(frozen=True)
class ServeSettings:
    """Server settings (the ``emotion serve`` options, minus host, port, workers and TLS); the
    defaults here are the command's defaults.

    ``face_fallback`` classifies the whole frame when no face is found instead of answering 422;
    ``max_faces`` bounds the faces one ``/predict?all_faces=true`` classifies;
    ``tta`` overrides the contract's test-time augmentation (``None``: as the model was evaluated);
    ``client_dir`` holds the on-device client served at ``/app/``.

    Limits (docs/serving.md): an upload may have at most ``max_upload_mb`` bytes, ``max_pixels``
    pixels and a side of ``max_side`` px; at most ``max_in_flight`` predictions per worker
    process are admitted at once (the rest get 503 with ``Retry-After``), and at most
    ``large_image_slots`` of them decode an image of more than 4 MP at a time; at most
    ``max_connections`` open connections per worker. Timeouts, in seconds: a request's line and
    headers (``header_timeout``, also an idle new connection), its body (``body_timeout``, the
    whole upload) and an idle keep-alive connection (``keepalive_timeout``).
    """

    model_dir: Path = Path("models")
    variant: str = "fp32"
    detect_face: bool = True
    face_fallback: bool = False
    face_model: Path = DEFAULT_FACE_MODEL
    max_upload_mb: float = 10.0
    max_pixels: int = 40_000_000
    max_side: int = 16_384
    max_faces: int = 10
    tta: TTAMode | None = None
    client_dir: Path = DEFAULT_CLIENT_DIR
    max_in_flight: int = 8
    large_image_slots: int = 2
    max_connections: int = 256
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.tta is not None and self.tta not in TTA_VIEWS:
            raise ConfigError(f"tta must be one of {sorted(TTA_VIEWS)}, got {self.tta!r}")
        positive = (
            "max_upload_mb max_pixels max_side max_faces max_in_flight large_image_slots"
            " max_connections"
            " header_timeout body_timeout keepalive_timeout"
        )
        for name in positive.split():
            if not getattr(self, name) > 0:
                flag = name.replace("_", "-")
                raise ConfigError(f"--{flag} must be positive, got {getattr(self, name)!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
