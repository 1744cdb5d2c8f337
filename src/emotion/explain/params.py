"""Params section ``explain``: explanations and their checks (stage ``explain``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from emotion.core.config import PositiveInt, Section

ExplainMethod = Literal["gradcam", "gradcam_pp", "shap", "lime"]
Region = Literal["brows", "eyes", "mouth", "nose", "cheeks"]  #: emotion.regions.masks.REGIONS


class ExplainParams(Section):
    """Explanations and their checks (stage ``explain``)."""

    per_class: Annotated[int, Field(ge=1, le=64)]
    methods: Annotated[list[ExplainMethod], Field(min_length=1)]
    target_layer: str
    seed: int
    shap_background: Annotated[int, Field(ge=1)]
    shap_nsamples: PositiveInt
    lime_samples: Annotated[int, Field(ge=10)]
    lime_segments: Annotated[int, Field(ge=2)]
    curve_steps: Annotated[int, Field(ge=2, le=200)]
    sanity_threshold: Annotated[float, Field(gt=-1.0, le=1.0)]
    expected_regions: dict[str, list[Region]]  #: per class; [] = balanced, absent = no expectation
    balanced_ratio: Annotated[float, Field(gt=1.0)]
