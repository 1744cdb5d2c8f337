"""A timm backbone + the original report's classification head, and how to train it in phases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

import emotion.training.cnn  # noqa: F401  (registers emotion_cnn_* with timm)
from emotion.core.config import validate
from emotion.core.errors import ConfigError, DataError
from emotion.training import checkpoint
from emotion.training.params import ModelParams
from emotion.vision.preprocessing import PreprocessingContract

#: Names in the original report that timm now spells differently.
MODEL_ALIASES = {
    "tf_efficientnet_b3_ns": "tf_efficientnet_b3.ns_jft_in1k",
    "efficientnet_b3_ns": "tf_efficientnet_b3.ns_jft_in1k",
}


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


def check_backbone(params: ModelParams) -> str:
    """The timm name of ``model.name``; ConfigError if timm (or this package) has no such model."""
    name = timm_name(params.name)
    if not timm.is_model(name.split(".")[0]):
        raise ConfigError(
            f"model.name: '{params.name}' is not a timm model; pick one of timm.list_models()"
            " (e.g. resnet18, convnext_tiny) or this package's emotion_cnn_s / emotion_cnn_m"
        )
    return name


def create_backbone(params: ModelParams) -> nn.Module:
    """A headless timm model; pretrained weights come from the hub or ``pretrained_file``.

    ``in_chans=1`` makes timm sum the pretrained RGB filters of the first conv, which is the same
    function as feeding three equal channels at a third of the input bandwidth. Models with a
    fixed token grid (ViT and friends) are built for ``model.image_size`` (timm resamples
    position embeddings of pretrained weights); convolutional models accept any size as they are.
    """
    name = check_backbone(params)
    file = params.pretrained_file
    kwargs = {
        "pretrained": params.pretrained,
        "pretrained_cfg_overlay": {"file": file} if params.pretrained and file else None,
        "num_classes": 0,
        "in_chans": params.in_chans,
    }
    try:
        return timm.create_model(name, img_size=params.image_size, **kwargs)
    except TypeError as exc:  # the architecture takes no img_size: any input size works
        if "img_size" not in str(exc):
            raise
    return timm.create_model(name, **kwargs)


def build_model(params: ModelParams, num_classes: int) -> EmotionNet:
    """Backbone + head for the ``model`` params section."""
    backbone = create_backbone(params)
    return EmotionNet(backbone, num_classes, params.head_hidden, params.head_dropout)


@dataclass(frozen=True)
class TrainedModel:
    """A trained network in eval mode with what a client needs to feed it."""

    model: EmotionNet
    params: ModelParams  #: the ``model`` section it was trained with (``pretrained`` off)
    classes: list[str]
    contract: PreprocessingContract


def load_trained(path: Path) -> TrainedModel:
    """Rebuild the network saved in a ``best_model.pth`` checkpoint (no hub download)."""
    ckpt = checkpoint.load(path)
    if ckpt.get("format_version") != checkpoint.FORMAT_VERSION:
        raise DataError(
            f"{path}: checkpoint format {ckpt.get('format_version')!r}, this version reads"
            f" {checkpoint.FORMAT_VERSION}; retrain it (`dvc repro train`)"
        )
    params = validate(ModelParams, {**ckpt["model"], "pretrained": False}, f"{path} [model]")
    classes = list(ckpt["classes"])
    model = build_model(params, len(classes))
    model.load_state_dict(ckpt["state_dict"])
    contract = PreprocessingContract.from_dict(ckpt["preprocessing"], str(path))
    return TrainedModel(model.eval(), params, classes, contract)


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
