"""Params section ``demo_data``: procedural demo face dataset (stage ``demo_data``)."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, model_validator

from emotion.core.config import (
    NonNegativeFloat,
    PositiveInt,
    Probability,
    Range,
    Section,
    check_range,
)
from emotion.demo_data.expressions import DEMO_CLASSES


class DemoDataParams(Section):
    """Procedural demo face dataset (stage ``demo_data``)."""

    seed: int
    count: PositiveInt
    image_size: Annotated[int, Field(ge=32, le=512)]
    class_proportions: dict[str, float]
    jpeg_fraction: Probability
    jpeg_quality: Annotated[int, Field(ge=30, le=100)]
    expression_spread: NonNegativeFloat
    max_rotation_deg: Annotated[float, Field(ge=0.0, le=45.0)]
    max_shift: Annotated[float, Field(ge=0.0, le=0.3)]
    scale_range: Range
    noise_std_max: NonNegativeFloat
    blur_max: NonNegativeFloat
    occlusion_prob: Probability

    @model_validator(mode="after")
    def _check(self) -> DemoDataParams:
        unknown = sorted(set(self.class_proportions) - set(DEMO_CLASSES))
        missing = sorted(set(DEMO_CLASSES) - set(self.class_proportions))
        if unknown or missing:
            raise ValueError(
                f"class_proportions must name exactly the classes {list(DEMO_CLASSES)}"
                f" (unknown: {unknown}, missing: {missing})"
            )
        if any(p < 0 for p in self.class_proportions.values()):
            raise ValueError("class_proportions must be non-negative")
        total = sum(self.class_proportions.values())
        if not math.isclose(total, 1.0, abs_tol=1e-3):
            raise ValueError(f"class_proportions must sum to 1 (they sum to {total:.4f})")
        check_range("scale_range", self.scale_range, 0.3, 2.0)
        return self
