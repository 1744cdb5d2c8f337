"""Backbone (any timm model) + the seed's classification head, and how to train it in phases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

import emotion.cnn  # noqa: F401  (registers emotion_cnn_* with timm)
from emotion import checkpoint
from emotion.errors import ConfigError

#: Seed-project names that timm now spells differently.
MODEL_ALIASES = {
    "tf_efficientnet_b3_ns": "tf_efficientnet_b3.ns_jft_in1k",
    "efficientnet_b3_ns": "tf_efficientnet_b3.ns_jft_in1k",
}


@dataclass(frozen=True)
class ModelSpec:
    """What to build (the ``model`` params section, minus image size)."""

    name: str
    num_classes: int
    in_chans: int = 1
    pretrained: bool = False
    pretrained_file: str | None = None
    head_hidden: int = 256
    head_dropout: float = 0.3


class EmotionNet(nn.Module):
    """A timm backbone (pooled features) followed by Linear-ReLU-LayerNorm-Dropout-Linear."""

    def __init__(self, backbone: nn.Module, num_classes: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(
            nn.Linear(backbone.num_features, hidden),
            nn.ReLU(),
            nn.LayerNorm(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def timm_name(name: str) -> str:
    """The current timm name for a (possibly legacy) model name."""
    return MODEL_ALIASES.get(name, name)


def create_backbone(spec: ModelSpec, image_size: int | None = None) -> nn.Module:
    """A headless timm model; pretrained weights come from the hub or ``pretrained_file``.

    ``in_chans=1`` makes timm sum the pretrained RGB filters of the first conv, which is the same
    function as feeding three equal channels at a third of the input bandwidth. Models with a
    fixed token grid (ViT and friends) are built for ``image_size`` (timm resamples position
    embeddings of pretrained weights); convolutional models accept any size as they are.
    """
    name = timm_name(spec.name)
    if not timm.is_model(name.split(".")[0]):
        raise ConfigError(f"model.name: '{spec.name}' is not a timm model (see timm.list_models())")
    overlay = {"file": spec.pretrained_file} if spec.pretrained and spec.pretrained_file else None
    kwargs = {
        "pretrained": spec.pretrained,
        "pretrained_cfg_overlay": overlay,
        "num_classes": 0,
        "in_chans": spec.in_chans,
    }
    if image_size is not None:
        try:
            return timm.create_model(name, img_size=image_size, **kwargs)
        except TypeError as exc:  # the architecture takes no img_size: any input size works
            if "img_size" not in str(exc):
                raise
    return timm.create_model(name, **kwargs)


def build_model(spec: ModelSpec, image_size: int | None = None) -> EmotionNet:
    """Backbone + head for ``spec`` (``image_size`` for fixed-grid models such as ViT)."""
    backbone = create_backbone(spec, image_size)
    return EmotionNet(backbone, spec.num_classes, spec.head_hidden, spec.head_dropout)


@dataclass(frozen=True)
class TrainedModel:
    """A trained network in eval mode with what a client needs to feed it."""

    model: EmotionNet
    spec: ModelSpec
    classes: list[str]
    preprocessing: dict[str, Any]


def load_trained(path: Path) -> TrainedModel:
    """Rebuild the network saved in a ``best_model.pth`` checkpoint (no hub download)."""
    ckpt = checkpoint.load(path)
    spec = ModelSpec(**{**ckpt["model"], "pretrained": False})
    prep = ckpt["preprocessing"]
    model = build_model(spec, prep["image_size"])
    model.load_state_dict(ckpt["state_dict"])
    return TrainedModel(model.eval(), spec, list(ckpt["classes"]), prep)


def normalization(model: EmotionNet, in_chans: int) -> tuple[list[float], list[float]]:
    """Mean/std the backbone expects (timm's pretrained config), one value per input channel."""
    cfg = resolve_model_data_config(model.backbone)
    mean, std = list(cfg["mean"]), list(cfg["std"])
    if in_chans != len(mean):
        mean = [sum(mean) / len(mean)] * in_chans
        std = [sum(std) / len(std)] * in_chans
    return mean, std


def set_backbone_trainable(model: EmotionNet, trainable: bool) -> None:
    """Freeze or unfreeze the backbone; a frozen backbone also keeps its norm statistics."""
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)
    model.backbone.train(trainable and model.training)


def param_groups(
    model: EmotionNet, backbone_lr: float, head_lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Discriminative learning rates; biases and norm weights get no weight decay."""

    def split(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        decay, no_decay = [], []
        for p in module.parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        return decay, no_decay

    groups = []
    for name, module, lr in (
        ("backbone", model.backbone, backbone_lr),
        ("head", model.head, head_lr),
    ):
        decay, no_decay = split(module)
        groups.append({"name": name, "params": decay, "lr": lr, "weight_decay": weight_decay})
        groups.append(
            {"name": f"{name}_no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0}
        )
    return [g for g in groups if g["params"]]


def iter_named_norms(model: nn.Module) -> Iterator[tuple[str, float, float]]:
    """(name, weight norm, gradient norm) per parameter tensor, for logging."""
    for name, p in model.named_parameters():
        grad = float(p.grad.norm()) if p.grad is not None else 0.0
        yield name, float(p.detach().norm()), grad
