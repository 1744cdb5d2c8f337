"""The optimisation side of the recipe, built from the typed ``train`` section.

``train.optimizer`` (AdamW, or SGD with Nesterov momentum; timm's factory) over discriminative
param groups, linear warmup + cosine decay per step (timm's scheduler), the AMP loss scaler and,
with ``train.sam_rho`` > 0, SAM's ascent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler

from emotion.training.model import EmotionNet, param_groups
from emotion.training.params import TrainParams
from emotion.training.sam import SharpnessAwareAscent


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` (``auto``: bf16 where supported, fp16 on older GPUs)."""
    if amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.backends.mkldnn.is_available() else None


def create_optimizer(model: EmotionNet, params: TrainParams) -> torch.optim.Optimizer:
    """``train.optimizer`` over the backbone/head param groups (no decay on biases and norms)."""
    groups = param_groups(model, params.backbone_lr, params.head_lr, params.weight_decay)
    return create_optimizer_v2(
        groups,
        opt=params.optimizer,
        lr=params.head_lr,
        weight_decay=params.weight_decay,
        momentum=params.momentum,
    )


def create_scheduler(
    optimizer: torch.optim.Optimizer, params: TrainParams, steps_per_epoch: int
) -> CosineLRScheduler:
    """Per-step linear warmup over ``train.warmup_epochs``, then cosine decay to 0."""
    return CosineLRScheduler(
        optimizer,
        t_initial=params.epochs * steps_per_epoch,
        lr_min=0.0,  # decaying every group to 0 keeps the backbone/head LR ratio throughout
        warmup_t=int(params.warmup_epochs * steps_per_epoch),
        warmup_lr_init=0.0,
        warmup_prefix=True,
        t_in_epochs=False,
    )


@dataclass
class Optimization:
    """What updates the weights: optimiser, schedule, loss scaler (fp16 only), SAM's ascent."""

    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    scaler: torch.amp.GradScaler
    sam: SharpnessAwareAscent | None
    amp: torch.dtype | None  #: the autocast dtype of forward passes (None: fp32)
    grad_clip: float  #: max gradient norm (``inf``: measured, not clipped)


def create_optimization(
    model: EmotionNet,
    params: TrainParams,
    steps_per_epoch: int,
    amp: torch.dtype | None,
    device: torch.device,
) -> Optimization:
    """The optimisation side of ``params`` for ``model`` (forward passes autocast to ``amp``)."""
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    optimizer = create_optimizer(model, params)
    scheduler = create_scheduler(optimizer, params, steps_per_epoch)
    sam = SharpnessAwareAscent(list(model.parameters()), params.sam_rho) if params.sam_rho else None
    clip = params.grad_clip if params.grad_clip > 0 else float("inf")
    return Optimization(optimizer, scheduler, scaler, sam, amp, clip)
