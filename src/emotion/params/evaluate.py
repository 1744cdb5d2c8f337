"""Params section ``evaluate``: test-set evaluation (stage ``evaluate``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from emotion.config import PositiveInt, Section


class EvaluateParams(Section):
    """Test-set evaluation (stage ``evaluate``)."""

    batch_size: PositiveInt
    tta_flip: bool
    calibration_bins: Annotated[int, Field(ge=2, le=100)]
