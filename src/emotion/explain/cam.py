"""Grad-CAM and Grad-CAM++ (pytorch-grad-cam) bound to a model and its resolved target layer."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from emotion.explain.base import MapMethod, Subject
from emotion.explain.layers import TargetLayer
from emotion.explain.params import ExplainParams


class CamMethod(MapMethod):
    """Maps from one pytorch-grad-cam class at the subject's target layer, at the model's input
    resolution; the CAM's hooks live only during a call."""

    cam: ClassVar[type[BaseCAM]]

    def __init__(self, subject: Subject, layer: TargetLayer) -> None:
        self.subject, self.layer = subject, layer

    @classmethod
    def bind(cls, subject: Subject, params: ExplainParams) -> Self:
        """Bound to ``subject`` and its layer (``explain.target_layer``, resolved by it)."""
        return cls(subject, subject.layer)

    def maps(
        self, images: np.ndarray, targets: np.ndarray, *, seed: int | None = None
    ) -> np.ndarray:
        """One map per image for its target class (deterministic: ``seed`` is unused)."""
        x = self.subject.inputs(images).requires_grad_(True)  # works with frozen backbones too
        cam = self.cam(
            model=self.subject.model,
            target_layers=[self.layer.module],
            reshape_transform=self.layer.reshape,
        )
        # released by hand, not by `with`: BaseCAM.__exit__ swallows an IndexError (bad target)
        try:
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        finally:
            cam.activations_and_grads.release()  # never leave hooks on the model
        return np.asarray(maps, dtype=np.float64)


class GradCamMethod(CamMethod):
    """Grad-CAM: activations weighted by their spatially averaged gradients."""

    cam = GradCAM


class GradCamPlusPlusMethod(CamMethod):
    """Grad-CAM++: activations weighted by higher-order gradient terms."""

    cam = GradCAMPlusPlus
