"""Params sections of the training package: ``model``, ``train``, ``evaluate``."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, model_validator

from emotion.core.config import (
    NonNegativeFloat,
    PositiveInt,
    Probability,
    Range,
    Section,
    check_range,
)
from emotion.vision.tta import TestTimeAugmentation, TTAMode

EXTRA_SETS_DIR = "data/extra"  #: where ``evaluate.extra_sets`` live (a dependency of evaluate)


class ModelParams(Section):
    """Backbone and head (stage ``train``)."""

    name: str
    pretrained: bool
    pretrained_file: str | None
    in_chans: Literal[1, 3]
    image_size: Annotated[int, Field(ge=16, le=1024)]
    head_hidden: PositiveInt
    head_dropout: Annotated[float, Field(ge=0.0, lt=1.0)]


class TrainParams(Section):
    """Optimisation recipe and online augmentation (stage ``train``)."""

    launcher: str
    processes: PositiveInt
    seed: int
    epochs: PositiveInt
    batch_size: Annotated[int, Field(ge=2, multiple_of=2)]
    freeze_backbone_epochs: Annotated[int, Field(ge=0)]
    backbone_lr: Annotated[float, Field(gt=0.0)]
    head_lr: Annotated[float, Field(gt=0.0)]
    optimizer: Literal["adamw", "sgd"]
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)]
    weight_decay: NonNegativeFloat
    sam_rho: NonNegativeFloat
    warmup_epochs: NonNegativeFloat
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)]
    mixup_alpha: NonNegativeFloat
    grad_clip: NonNegativeFloat
    ema_decay: Annotated[float, Field(ge=0.0, lt=1.0)]
    class_weights: bool
    amp: Literal["auto", "off", "bf16", "fp16"]
    channels_last: bool
    patience: PositiveInt
    aug_hflip: Probability
    aug_rotation_deg: Annotated[float, Field(ge=0.0, le=180.0)]
    aug_scale: Range
    aug_translate: Annotated[float, Field(ge=0.0, le=0.5)]
    aug_brightness: Annotated[float, Field(ge=0.0, lt=1.0)]
    aug_contrast: Annotated[float, Field(ge=0.0, lt=1.0)]
    aug_erasing_prob: Probability

    @model_validator(mode="after")
    def _check(self) -> TrainParams:
        check_range("aug_scale", self.aug_scale, 0.1, 4.0)
        if self.freeze_backbone_epochs >= self.epochs:
            raise ValueError("freeze_backbone_epochs must be smaller than epochs")
        return self


class EvaluateParams(Section):
    """Calibration on validation, test-set and extra-set evaluation (stage ``evaluate``)."""

    batch_size: PositiveInt
    tta: TTAMode
    tta_crop: Annotated[float, Field(gt=0.5, le=1.0)]
    calibration: Literal["temperature", "none"]
    calibration_bins: Annotated[int, Field(ge=2, le=100)]
    extra_sets: list[str]

    @model_validator(mode="after")
    def _check_extra_sets(self) -> EvaluateParams:
        for i, entry in enumerate(self.extra_sets):
            path = PurePosixPath(entry)
            if path.parent != PurePosixPath(EXTRA_SETS_DIR) or not path.name:
                raise ValueError(
                    f"extra_sets[{i}] {entry!r} must be a folder (or FER2013-style .csv) directly"
                    f" in {EXTRA_SETS_DIR}/, the evaluate stage's DVC dependency: put it there"
                    f" (`dvc add {EXTRA_SETS_DIR}/NAME`) and list it as {EXTRA_SETS_DIR}/NAME"
                )
        names = [PurePosixPath(e).stem for e in self.extra_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"extra_sets names must be unique, got {names}")
        return self

    def test_time_augmentation(self) -> TestTimeAugmentation:
        return TestTimeAugmentation(self.tta, self.tta_crop)
