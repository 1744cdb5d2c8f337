"""Params section ``balance``: oversampling the training split with augmented variants."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from emotion.config import Probability, Range, Section, check_range


class BalanceParams(Section):
    """Training-split oversampling with augmented variants (stage ``balance``)."""

    seed: int
    strategy: Literal["max", "mean", "none"] | Annotated[int, Field(ge=1)]
    max_variants_per_image: Annotated[int, Field(ge=0)]
    tolerance: Annotated[float, Field(ge=0.0, le=0.5)]
    image_size: Annotated[int, Field(ge=8, le=1024)] | None
    hflip_prob: Probability
    vflip_prob: Probability
    rotation_deg: Annotated[float, Field(ge=0.0, le=180.0)]
    brightness: Range
    contrast: Range
    sharpness: Range

    @model_validator(mode="after")
    def _check(self) -> BalanceParams:
        check_range("brightness", self.brightness, 0.0, 3.0)
        check_range("contrast", self.contrast, 0.0, 3.0)
        check_range("sharpness", self.sharpness, 0.0, 3.0)
        return self
