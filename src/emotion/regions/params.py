"""Params section ``regions``: facial regions of the test faces (stage ``regions``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from emotion.core.config import Section


class RegionsParams(Section):
    """Facial regions of the test faces from face-mesh landmarks (stage ``regions``)."""

    min_face_score: Annotated[float, Field(gt=0.0, lt=1.0)]
