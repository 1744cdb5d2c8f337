"""Params sections of the data package: ``ingest``, ``split``, ``balance``."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from emotion.core.config import Probability, Range, Section, check_range


class IngestParams(Section):
    """Raw dataset import, verification and EDA (stage ``ingest``)."""

    source: str
    classes: list[str]
    aliases: dict[str, str]
    drop: list[str]
    on_corrupt: Literal["fail", "skip"]
    samples_per_class: Annotated[int, Field(ge=1, le=32)]

    @model_validator(mode="after")
    def _check(self) -> IngestParams:
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError("classes must list at least two distinct names")
        bad_targets = sorted({t for t in self.aliases.values() if t not in self.classes})
        if bad_targets:
            raise ValueError(f"aliases map to names that are not in classes: {bad_targets}")
        clash = sorted(set(self.drop) & set(self.classes))
        if clash:
            raise ValueError(f"drop lists names that are also classes: {clash}")
        return self


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
