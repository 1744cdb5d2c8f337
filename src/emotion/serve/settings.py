"""What ``create_app`` needs to know: model, variant, face policy and input limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emotion.assets.face_model import DEFAULT_FACE_MODEL
from emotion.core.errors import ConfigError
from emotion.core.tta import TTA_VIEWS, TTAMode

VARIANTS = ("fp32", "int8")
DEFAULT_CLIENT_DIR = Path("client")


@dataclass(frozen=True)
class ServeSettings:
    """Server settings (the ``emotion serve`` options, minus host and port).

    ``face_fallback`` classifies the whole frame when no face is found instead of answering 422;
    ``tta`` overrides the contract's test-time augmentation (``None``: as the model was evaluated);
    ``client_dir`` holds the on-device client served at ``/app/``.
    """

    model_dir: Path = Path("models")
    variant: str = "fp32"
    detect_face: bool = True
    face_fallback: bool = False
    face_model: Path = DEFAULT_FACE_MODEL
    max_upload_mb: float = 10.0
    max_pixels: int = 40_000_000
    tta: TTAMode | None = None
    client_dir: Path = DEFAULT_CLIENT_DIR

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.tta is not None and self.tta not in TTA_VIEWS:
            raise ConfigError(f"tta must be one of {sorted(TTA_VIEWS)}, got {self.tta!r}")
        if self.max_upload_mb <= 0 or self.max_pixels <= 0:
            raise ConfigError("max_upload_mb and max_pixels must be positive")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
