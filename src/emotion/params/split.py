"""Params section ``split``: train/val/test split, grouped by exact and near duplicates."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from emotion.config import Section


class SplitParams(Section):
    """Train/val/test split (stage ``balance``), grouped by exact and near-duplicate images."""

    mode: Literal["predefined", "stratified"]
    seed: int
    train_ratio: Annotated[float, Field(gt=0.0, lt=1.0)]
    val_ratio: Annotated[float, Field(ge=0.0, lt=1.0)]
    test_ratio: Annotated[float, Field(ge=0.0, lt=1.0)]
    phash_radius: Annotated[int, Field(ge=0, le=16)]
    drop_cross_split_duplicates: bool

    @model_validator(mode="after")
    def _check(self) -> SplitParams:
        total = self.train_ratio + self.val_ratio + self.test_ratio
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train_ratio + val_ratio + test_ratio must be 1 (got {total:.4f})")
        return self
