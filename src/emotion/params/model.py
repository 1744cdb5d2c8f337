"""Params section ``model``: backbone and head (stage ``train``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from emotion.config import PositiveInt, Section


class ModelParams(Section):
    """Backbone and head (stage ``train``)."""

    name: str
    pretrained: bool
    pretrained_file: str | None
    in_chans: Literal[1, 3]
    image_size: Annotated[int, Field(ge=16, le=1024)]
    head_hidden: PositiveInt
    head_dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
