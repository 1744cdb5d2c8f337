"""Which layer Grad-CAM looks at, per backbone family, and the ViT token reshape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def _is_vit(backbone: nn.Module) -> bool:
    return hasattr(backbone, "blocks") and hasattr(backbone, "patch_embed")


def _vit_reshape(vit: nn.Module) -> ReshapeFn:
    prefix = getattr(vit, "num_prefix_tokens", 1)
    grid = vit.patch_embed.grid_size

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        b, _, c = tokens.shape
        return tokens[:, prefix:].reshape(b, *grid, c).permute(0, 3, 1, 2)

    return reshape


@dataclass(frozen=True)
class TargetLayer:
    """The layer Grad-CAM looks at: the module, its token-to-grid reshape (ViT) and its path."""

    module: nn.Module
    reshape: ReshapeFn | None
    path: str  #: dotted, as ``explain.target_layer`` spells it

    @classmethod
    def of(cls, model: EmotionNet, override: str = "auto") -> TargetLayer:
        """``override`` (a dotted path) or the default for ``model``'s backbone family."""
        bb = model.backbone
        if override != "auto":
            module = resolve(model, override)
            return cls(module, _vit_reshape(bb) if _is_vit(bb) else None, override)
        if _is_vit(bb):  # ViT family: tokens -> grid
            return cls(bb.blocks[-1].norm1, _vit_reshape(bb), "backbone.blocks.-1.norm1")
        if hasattr(bb, "layer4"):  # ResNet family
            return cls(bb.layer4[-1], None, "backbone.layer4.-1")
        if hasattr(bb, "conv_head"):  # EfficientNet family
            return cls(bb.conv_head, None, "backbone.conv_head")
        if hasattr(bb, "stages"):  # ConvNeXt, emotion_cnn and other staged CNNs
            return cls(bb.stages[-1], None, "backbone.stages.-1")
        raise ConfigError(
            f"explain.target_layer: no default for {type(bb).__name__}; set a dotted path,"
            " e.g. 'backbone.features.7'"
        )
