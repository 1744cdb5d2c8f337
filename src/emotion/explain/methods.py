"""Saliency maps for a batch: Grad-CAM, Grad-CAM++, SHAP (GradientExplainer), LIME, random.

Every method returns float maps (N, H, W), non-negative, for the given target classes; evidence
*for* the class is what the faithfulness and localisation checks use. Methods are registered by
name (:data:`REGISTRY`, the names ``explain.methods`` accepts, plus the ``random`` baseline); each
entry takes a :class:`MapRequest`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import shap
import torch
from lime import lime_image
from lime.wrappers.scikit_image import SegmentationAlgorithm
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from emotion.explain.layers import target_layer
from emotion.explain.params import ExplainParams


@dataclass(frozen=True)
class MapRequest:
    """One batch to explain: the model, its inputs, the images (0-255) and target classes."""

    model: nn.Module
    x: torch.Tensor
    images: np.ndarray
    targets: np.ndarray
    seed: int
    params: ExplainParams
    background: torch.Tensor  #: SHAP's background inputs
    probabilities: Callable[[np.ndarray], np.ndarray]  #: images (0-255) -> class probabilities


MapFn = Callable[[MapRequest], np.ndarray]
REGISTRY: dict[str, MapFn] = {}
STOCHASTIC: set[str] = set()  #: methods whose maps depend on the seed (stability is measured)


def register(name: str, *, stochastic: bool = False) -> Callable[[MapFn], MapFn]:
    """Register a map function under ``name``."""

    def add(fn: MapFn) -> MapFn:
        REGISTRY[name] = fn
        if stochastic:
            STOCHASTIC.add(name)
        return fn

    return add


def _cam(
    cls: type, model: nn.Module, x: torch.Tensor, targets: Sequence[int], layer: str
) -> np.ndarray:
    module, reshape, _ = target_layer(model, layer)
    cam = cls(model=model, target_layers=[module], reshape_transform=reshape)
    try:
        x = x.clone().requires_grad_(True)  # works with frozen backbones too
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    finally:
        cam.activations_and_grads.release()  # never leave hooks on the model
    return np.asarray(maps, dtype=np.float64)


def gradcam(
    model: nn.Module, x: torch.Tensor, targets: Sequence[int], layer: str = "auto"
) -> np.ndarray:
    """Grad-CAM (pytorch-grad-cam), one target class per image."""
    return _cam(GradCAM, model, x, targets, layer)


def gradcam_pp(
    model: nn.Module, x: torch.Tensor, targets: Sequence[int], layer: str = "auto"
) -> np.ndarray:
    """Grad-CAM++ (pytorch-grad-cam), one target class per image."""
    return _cam(GradCAMPlusPlus, model, x, targets, layer)


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
    model: nn.Module,
    x: torch.Tensor,
    targets: Sequence[int],
    background: torch.Tensor,
    nsamples: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """SHAP values of the target logit (GradientExplainer = expected gradients), positive part.

    GradientExplainer is used because DeepExplainer's rules do not cover residual additions,
    LayerNorm or SiLU and fail with in-place ops in timm backbones; expected gradients need only
    autograd, so they are correct for any differentiable model.
    """
    safe = without_inplace(model)
    out = np.zeros((len(x), *x.shape[-2:]))
    targets = np.asarray(targets)
    for cls in np.unique(targets):
        rows = np.flatnonzero(targets == cls)
        explainer = shap.GradientExplainer(_ClassLogit(safe, int(cls)), background)
        values = np.asarray(explainer.shap_values(x[rows], nsamples=nsamples, rseed=seed))
        values = values.reshape(len(rows), *x.shape[1:], -1)[..., 0]  # (n, C, H, W)
        out[rows] = np.maximum(values.sum(1), 0.0)
    return out


def lime_maps(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    targets: Sequence[int],
    samples: int = 300,
    segments: int = 30,
    seed: int = 0,
) -> np.ndarray:
    """LIME superpixel weights painted back onto the pixels (positive part).

    ``images`` are 2-D grayscale floats in [0, 1]; LIME turns them into RGB, so
    ``predict_proba`` receives (n, H, W, 3) and should use one channel.
    """
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    segmenter = SegmentationAlgorithm(
        "slic", n_segments=segments, compactness=0.1, sigma=0.5, start_label=0, channel_axis=-1
    )
    out = np.zeros(images.shape, dtype=np.float64)
    for i, (image, target) in enumerate(zip(images, targets, strict=True)):
        exp = explainer.explain_instance(
            image.astype(np.float64),
            predict_proba,
            labels=(int(target),),
            top_labels=None,
            num_samples=samples,
            batch_size=100,
            segmentation_fn=segmenter,
            random_seed=seed,
        )
        weights = np.zeros(exp.segments.max() + 1)
        for segment, weight in exp.local_exp[int(target)]:
            weights[segment] = max(weight, 0.0)
        out[i] = weights[exp.segments]
    return out


def random_maps(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The random-saliency baseline: i.i.d. uniform maps."""
    return np.random.default_rng(seed).random(shape)


@register("gradcam")
def _gradcam(r: MapRequest) -> np.ndarray:
    return gradcam(r.model, r.x, r.targets, r.params.target_layer)


@register("gradcam_pp")
def _gradcam_pp(r: MapRequest) -> np.ndarray:
    return gradcam_pp(r.model, r.x, r.targets, r.params.target_layer)


@register("shap", stochastic=True)
def _shap(r: MapRequest) -> np.ndarray:
    torch.manual_seed(r.seed)
    return shap_gradient(r.model, r.x, r.targets, r.background, r.params.shap_nsamples, r.seed)


@register("lime", stochastic=True)
def _lime(r: MapRequest) -> np.ndarray:
    return lime_maps(
        lambda rgb: r.probabilities(rgb[..., 0] * 255.0),
        r.images / 255.0,
        r.targets,
        r.params.lime_samples,
        r.params.lime_segments,
        r.seed,
    )


@register("random")
def _random(r: MapRequest) -> np.ndarray:
    return random_maps((len(r.images), *r.images.shape[1:]), r.seed)
