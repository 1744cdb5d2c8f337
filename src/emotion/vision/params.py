"""Params section ``crop``: how a face crop frames the face (stages ``synthesize``, ``export``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from emotion.core.config import Section


class CropParams(Section):
    """The square face crop: the detected face box grown by ``face_margin`` per side.

    One value for every crop that must look like the training data: synthetic faces cut out
    for training (``synthesize``) and the served model's crop of a photo (``export`` writes it
    into the model contract).
    """

    face_margin: Annotated[float, Field(ge=0.0, le=1.0)]
