"""``emotion_cnn``: a small VGG-style CNN for 48x48 faces, registered with timm.

Registered like any timm architecture, so ``timm.create_model("emotion_cnn_s", ...)`` supports
``pretrained_cfg_overlay=dict(file=...)``, ``in_chans`` adaptation and ``num_classes=0`` exactly as
the big backbones do. It is the fast CPU default; the workstation profile uses ImageNet backbones.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["EmotionCNN"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class EmotionCNN(nn.Module):
    """Conv stages of two 3x3 conv-BN-ReLU layers, 2x2 max-pool between stages, global pool."""

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        stages: list[nn.Module] = []
        cin = in_chans
        for i, width in enumerate(widths):
            pool = nn.MaxPool2d(2) if i > 0 else nn.Identity()
            stages.append(nn.Sequential(pool, _block(cin, width)))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = cin
        self.feature_info = [
            {"num_chs": w, "reduction": 2**i, "module": f"stages.{i}"} for i, w in enumerate(widths)
        ]
        self.global_pool = global_pool
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(cin, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.amax(dim=(2, 3)) if self.global_pool == "max" else x.mean(dim=(2, 3))
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 6,
        "input_size": (1, 48, 48),
        "pool_size": (6, 6),
        "interpolation": "bilinear",
        "mean": (0.5,),
        "std": (0.25,),
        "first_conv": "stages.0.1.0",
        "classifier": "fc",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {"emotion_cnn_s.untrained": _cfg(), "emotion_cnn_m.untrained": _cfg()}
)


def _create(variant: str, pretrained: bool, widths: tuple[int, ...], **kwargs: Any) -> EmotionCNN:
    return build_model_with_cfg(EmotionCNN, variant, pretrained, widths=widths, **kwargs)


@register_model
def emotion_cnn_s(pretrained: bool = False, **kwargs: Any) -> EmotionCNN:
    """Small: widths 32-64-128-256 (1.2M parameters), the default of params.yaml and fer2013-cpu."""
    return _create("emotion_cnn_s", pretrained, (32, 64, 128, 256), **kwargs)


@register_model
def emotion_cnn_m(pretrained: bool = False, **kwargs: Any) -> EmotionCNN:
    """Medium: widths 48-96-192-384 (2.7M parameters, 2.25x the FLOPs of ``emotion_cnn_s``)."""
    return _create("emotion_cnn_m", pretrained, (48, 96, 192, 384), **kwargs)
