"""Params section ``synth``: Stable Diffusion synthesis with quality control."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from emotion.core.config import NonNegativeFloat, PositiveInt, Probability, Section


class SynthParams(Section):
    """Stable Diffusion synthesis with quality control (stage ``synthesize``)."""

    enabled: bool
    launcher: str
    model_id: str
    revision: str | None
    target_total: Annotated[int, Field(ge=0)]
    max_synthetic_fraction: Annotated[float, Field(ge=0.0, lt=1.0)]
    oversample: Annotated[float, Field(ge=1.0, le=10.0)]
    max_rounds: Annotated[int, Field(ge=1, le=20)]
    seed: int
    steps: PositiveInt
    guidance_scale: NonNegativeFloat
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=8)]
    batch_size: PositiveInt
    dtype: Literal["auto", "float32", "float16", "bfloat16"]
    prompt_template: str
    expressions: dict[str, str]
    styles: Annotated[list[str], Field(min_length=1)]
    negative_prompt: str
    face_model: str
    min_face_confidence: Probability
    min_face_size: Annotated[float, Field(ge=0.0, le=1.0)]
    min_sharpness: NonNegativeFloat
    phash_min_distance: Annotated[int, Field(ge=0, le=32)]

    @model_validator(mode="after")
    def _check(self) -> SynthParams:
        for field in ("{expression}", "{emotion}"):
            if field not in self.prompt_template:
                raise ValueError(f"prompt_template must contain {field}")
        return self

    def check_classes(self, classes: Sequence[str]) -> None:
        """``expressions`` holds one phrase per class of the data, and no other (ValueError)."""
        missing = [c for c in classes if c not in self.expressions]
        extra = sorted(set(self.expressions) - set(classes))
        if missing or extra:
            raise ValueError(
                f"synth.expressions needs one phrase per class {list(classes)}; "
                f"missing {missing}, unknown {extra}"
            )
