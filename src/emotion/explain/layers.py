"""Which layer Grad-CAM looks at, per backbone family, and the ViT token reshape."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from emotion.core.errors import ConfigError
from emotion.training.model import EmotionNet

ReshapeFn = Callable[[torch.Tensor], torch.Tensor]


def resolve(module: nn.Module, dotted: str) -> nn.Module:
    """``module`` attribute path like ``backbone.layer4.1`` (integers index sequences)."""
    current = module
    for part in dotted.split("."):
        try:
            current = current[int(part)] if part.lstrip("-").isdigit() else getattr(current, part)
        except (AttributeError, IndexError, TypeError):
            raise ConfigError(
                f"explain.target_layer: '{dotted}' has no '{part}' in {type(current).__name__}"
            ) from None
    return current


def _vit_reshape(vit: nn.Module) -> ReshapeFn:
    prefix = getattr(vit, "num_prefix_tokens", 1)
    grid = vit.patch_embed.grid_size

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        b, _, c = tokens.shape
        return tokens[:, prefix:].reshape(b, *grid, c).permute(0, 3, 1, 2)

    return reshape


def target_layer(
    model: EmotionNet, override: str = "auto"
) -> tuple[nn.Module, ReshapeFn | None, str]:
    """The Grad-CAM layer for ``model``'s backbone family: (layer, reshape transform, path)."""
    bb = model.backbone
    if override != "auto":
        layer = resolve(model, override)
        return (
            layer,
            (_vit_reshape(bb) if hasattr(bb, "patch_embed") and hasattr(bb, "blocks") else None),
            override,
        )
    if hasattr(bb, "blocks") and hasattr(bb, "patch_embed"):  # ViT family: tokens -> grid
        return bb.blocks[-1].norm1, _vit_reshape(bb), "backbone.blocks.-1.norm1"
    if hasattr(bb, "layer4"):  # ResNet family
        return bb.layer4[-1], None, "backbone.layer4.-1"
    if hasattr(bb, "conv_head"):  # EfficientNet family
        return bb.conv_head, None, "backbone.conv_head"
    if hasattr(bb, "stages"):  # ConvNeXt, emotion_cnn and other staged CNNs
        return bb.stages[-1], None, "backbone.stages.-1"
    raise ConfigError(
        f"explain.target_layer: no default for {type(bb).__name__}; set a dotted path,"
        " e.g. 'backbone.features.7'"
    )
