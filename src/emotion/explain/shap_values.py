"""SHAP values (GradientExplainer = expected gradients) bound to a model and its background."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Self

import numpy as np
import shap
import torch
from torch import nn

from emotion.explain.base import MapMethod, Subject
from emotion.explain.params import ExplainParams


def without_inplace(model: nn.Module) -> nn.Module:
    """A deep copy with in-place activations turned off (SHAP's gradient hooks need that)."""
    clone = copy.deepcopy(model).eval()
    for module in clone.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return clone


class _ClassLogit(nn.Module):
    def __init__(self, model: nn.Module, cls: int) -> None:
        super().__init__()
        self.model, self.cls = model, cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.cls : self.cls + 1]


def shap_gradient(
    safe: nn.Module,
    x: torch.Tensor,
    targets: Sequence[int],
    background: torch.Tensor,
    nsamples: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """SHAP values of the target logit of ``safe`` (a :func:`without_inplace` copy), positive
    part.

    GradientExplainer is used because DeepExplainer's rules do not cover residual additions,
    LayerNorm or SiLU and fail with in-place ops in timm backbones; expected gradients need only
    autograd, so they are correct for any differentiable model.
    """
    out = np.zeros((len(x), *x.shape[-2:]))
    targets = np.asarray(targets)
    for cls in np.unique(targets):
        rows = np.flatnonzero(targets == cls)
        explainer = shap.GradientExplainer(_ClassLogit(safe, int(cls)), background)
        values = np.asarray(explainer.shap_values(x[rows], nsamples=nsamples, rseed=seed))
        values = values.reshape(len(rows), *x.shape[1:], -1)[..., 0]  # (n, C, H, W)
        out[rows] = np.maximum(values.sum(1), 0.0)
    return out


class ShapMethod(MapMethod):
    """Expected gradients of the target logit against the subject's background inputs, summed
    over channels, positive part; at the model's input resolution."""

    stochastic = True

    def __init__(self, subject: Subject, nsamples: int, seed: int) -> None:
        self.subject, self.nsamples, self.seed = subject, nsamples, seed
        self.safe = without_inplace(subject.model)  #: the copy SHAP's hooks run on

    @classmethod
    def bind(cls, subject: Subject, params: ExplainParams) -> Self:
        """Bound to ``subject`` with ``explain.shap_nsamples`` and ``explain.seed``."""
        return cls(subject, params.shap_nsamples, params.seed)

    def maps(
        self, images: np.ndarray, targets: np.ndarray, *, seed: int | None = None
    ) -> np.ndarray:
        """SHAP maps; torch's RNG is seeded first, so a call is reproducible on its own."""
        seed = self.seed if seed is None else seed
        x = self.subject.inputs(images)
        torch.manual_seed(seed)
        return shap_gradient(self.safe, x, targets, self.subject.background, self.nsamples, seed)
