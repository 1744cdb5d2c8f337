"""What an explanation method binds to (:class:`Subject`) and what it offers (:class:`MapMethod`).

Like pytorch-grad-cam's CAM classes, a method is bound once to a model (and whatever it needs of
it: the Grad-CAM layer, SHAP's background) with its settings from ``explain``; each call then
explains one batch: ``maps(images, targets)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import ClassVar, Self

import numpy as np
import torch
from torch import nn

from emotion.explain.layers import TargetLayer
from emotion.explain.params import ExplainParams
from emotion.training.tensordata import Preprocess


def model_inputs(pre: Preprocess, images: np.ndarray) -> torch.Tensor:
    """Model inputs for images (B, H, W) with values 0-255."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) / 255.0)[:, None]
    return pre.finish(x)


class Subject:
    """A model to explain: its inputs and class probabilities for images (0-255), SHAP's
    background inputs and its Grad-CAM layer (resolved on first use, then kept)."""

    def __init__(
        self, model: nn.Module, pre: Preprocess, background: torch.Tensor, target_layer: str
    ) -> None:
        self.model, self.pre, self.background = model, pre, background
        self.target_layer = target_layer  #: ``explain.target_layer``: a dotted path or auto

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        """Model inputs for images (B, H, W) with values 0-255."""
        return model_inputs(self.pre, images)

    @torch.no_grad()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (B, C), float64, for images (B, H, W) with values 0-255."""
        out = [
            self.model(self.inputs(images[i : i + 256])).softmax(-1).numpy()
            for i in range(0, len(images), 256)
        ]
        return np.concatenate(out).astype(np.float64)

    @cached_property
    def layer(self) -> TargetLayer:
        """The Grad-CAM layer, resolved once."""
        return TargetLayer.of(self.model, self.target_layer)


class MapMethod(ABC):
    """A saliency method bound to one :class:`Subject`.

    ``maps`` returns float maps (N, h, w), non-negative, for images (N, H, W) with values 0-255
    and one target class per image: the evidence *for* the class. ``h, w`` may be the model's
    input or feature resolution; the caller resizes.
    """

    stochastic: ClassVar[bool] = False  #: samples: its stability across seeds is measured

    @classmethod
    @abstractmethod
    def bind(cls, subject: Subject, params: ExplainParams) -> Self:
        """The method bound to ``subject`` with the settings it needs from ``params``."""

    @abstractmethod
    def maps(
        self, images: np.ndarray, targets: np.ndarray, *, seed: int | None = None
    ) -> np.ndarray:
        """Maps for ``images`` and their ``targets``; ``seed`` replaces the bound seed for this
        call (methods that draw no random numbers ignore it)."""
