"""One epoch of training, and validation, after timm's ``train.py`` (``train_one_epoch``,
``validate``).

A step: forward under autocast, class-weighted soft-target cross-entropy, backward (twice with
SAM, the second pass at the ascended weights with frozen norm statistics), unscale, gradient
clipping, optimiser step, per-step schedule, EMA update. Every epoch reseeds its RNGs from
(seed, epoch), so a resumed run replays exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from timm.data import Mixup
from timm.data.mixup import mixup_target
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from emotion.core.distributed import DistContext
from emotion.training.diagnostics import GradNorms, model_blocks
from emotion.training.evaluation import predict, quick_scores
from emotion.training.model import EmotionNet, set_backbone_trainable
from emotion.training.optim import Optimization, create_optimization
from emotion.training.params import TrainParams
from emotion.training.sam import frozen_norm_statistics
from emotion.training.tensordata import (
    BatchAugment,
    Preprocess,
    TensorSplit,
    epoch_batches,
)
from emotion.vision.tta import NO_TTA

VALIDATION_BATCH = 256  #: images per forward pass when validating (memory only, not results)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's global and torch's default generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (timm Mixup draws from the global generator)
    torch.manual_seed(seed)


def soft_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy against soft targets, optionally weighted per class."""
    logp = F.log_softmax(logits.float(), dim=-1)
    if weights is not None:
        target = target * weights
    return -(target * logp).sum(-1).mean()


def inverse_frequency_weights(counts: torch.Tensor) -> torch.Tensor:
    """Per-class weights proportional to 1 / frequency, averaging 1 over present classes."""
    counts = counts.float()
    weights = torch.where(counts > 0, counts.sum() / (len(counts) * counts.clamp(min=1)), 0.0)
    return weights / weights[counts > 0].mean()


@dataclass
class TrainBatches:
    """The training split as augmented, soft-labelled batches on the device (the fast data
    path): uint8 images -> float, batched augmentation, preprocessing, random erasing, MixUp or
    label smoothing."""

    split: TensorSplit
    pre: Preprocess
    augment: BatchAugment
    mixup: Mixup | None
    num_classes: int
    label_smoothing: float
    device: torch.device

    @classmethod
    def create(
        cls,
        split: TensorSplit,
        pre: Preprocess,
        params: TrainParams,
        num_classes: int,
        device: torch.device,
    ) -> TrainBatches:
        """The data path of ``params`` (``aug_*``, ``mixup_alpha``, ``label_smoothing``)."""
        mixup = (
            Mixup(
                mixup_alpha=params.mixup_alpha,
                label_smoothing=params.label_smoothing,
                num_classes=num_classes,
            )
            if params.mixup_alpha > 0
            else None
        )
        augment = BatchAugment(params)
        return cls(split, pre, augment, mixup, num_classes, params.label_smoothing, device)

    def __call__(
        self, idx: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images ``idx``: (inputs, hard labels, soft targets), augmented with ``gen``."""
        y = self.split.labels[idx].to(self.device)
        x = self.pre.to_float(self.split.images[idx], self.device)
        x = self.pre.finish(self.augment(x, gen))
        x = self.augment.erase(x)
        if self.mixup is not None:
            x, soft = self.mixup(x, y)
        else:
            soft = mixup_target(y, self.num_classes, lam=1.0, smoothing=self.label_smoothing)
        return x, y, soft


@dataclass
class Learner:
    """What a training step changes: the weights, the optimisation side, the EMA weights, the
    step count, and the per-block gradient norms it measures."""

    model: EmotionNet
    opt: Optimization
    ema: ModelEmaV3 | None
    class_weights: torch.Tensor | None
    grad_norms: GradNorms
    global_step: int = 0


def create_learner(
    model: EmotionNet,
    params: TrainParams,
    steps_per_epoch: int,
    amp: torch.dtype | None,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
) -> Learner:
    """``model`` with the optimisation side and EMA (``ema_decay`` > 0) of ``params``."""
    opt = create_optimization(model, params, steps_per_epoch, amp, device)
    ema = (
        ModelEmaV3(model, decay=params.ema_decay, use_warmup=True) if params.ema_decay > 0 else None
    )
    return Learner(model, opt, ema, class_weights, GradNorms(model_blocks(model)))


def distributed_model(model: EmotionNet, world: int, frozen: bool) -> torch.nn.Module:
    """``model`` as the forward passes see it: DDP-wrapped with more than one process."""
    if world == 1:
        return model
    return DistributedDataParallel(model, find_unused_parameters=frozen)


def _forward_backward(
    learner: Learner, net: torch.nn.Module, x: torch.Tensor, soft: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward (autocast) and backward of the class-weighted soft-target loss, fresh grads."""
    opt = learner.opt
    with torch.autocast(x.device.type, dtype=opt.amp, enabled=opt.amp is not None):
        logits = net(x)
    loss = soft_cross_entropy(logits, soft, learner.class_weights)
    opt.optimizer.zero_grad(set_to_none=True)
    opt.scaler.scale(loss).backward()
    return logits, loss


def train_step(
    learner: Learner, net: torch.nn.Module, x: torch.Tensor, soft: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimiser step (AMP, SAM, clipping, schedule, EMA) of ``net`` (the learner's model,
    maybe DDP-wrapped); returns (logits, loss, grad norm) of the pass at the current weights."""
    opt, model = learner.opt, learner.model
    logits, loss = _forward_backward(learner, net, x, soft)
    if opt.sam is not None and opt.sam.ascend():
        with frozen_norm_statistics(model):
            _forward_backward(learner, net, x, soft)
        opt.sam.restore()
    opt.scaler.unscale_(opt.optimizer)
    learner.grad_norms.add()
    grad_norm = torch.nn.utils.clip_grad_norm_(
        [p for p in model.parameters() if p.requires_grad], opt.grad_clip
    )
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    learner.global_step += 1
    opt.scheduler.step_update(learner.global_step)
    if learner.ema is not None:
        learner.ema.update(model, step=learner.global_step)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return logits, loss, grad_norm


@dataclass
class EpochTotals:
    """Running sums over an epoch's steps (losses and norms weighted by batch size)."""

    loss: float = 0.0
    correct: float = 0.0
    grad_norm: float = 0.0
    data_s: float = 0.0
    step_s: float = 0.0
    seen: int = 0

    def stats(self, frozen: bool, world: int) -> dict[str, Any]:
        """The epoch's means (train loss, accuracy, grad norm), seconds and image count."""
        seen = max(self.seen, 1)
        return {
            "train_loss": self.loss / seen,
            "train_accuracy": self.correct / seen,
            "grad_norm": self.grad_norm / seen,
            "data_s": self.data_s,
            "step_s": self.step_s,
            "images": self.seen * world,
            "frozen": frozen,
        }


def train_one_epoch(
    epoch: int,
    learner: Learner,
    batches: TrainBatches,
    params: TrainParams,
    ctx: DistContext,
    progress: Callable[[int], None],
) -> dict[str, Any]:
    """Train epoch ``epoch`` (0-based; the backbone frozen in the first
    ``freeze_backbone_epochs``) on this process's shard; ``progress(images)`` after each step."""
    model = learner.model
    frozen = epoch < params.freeze_backbone_epochs
    model.train()
    set_backbone_trainable(model, not frozen)
    net = distributed_model(model, ctx.world, frozen)
    epoch_seed = params.seed * 10_000 + epoch
    seed_everything(epoch_seed)
    gen = torch.Generator().manual_seed(epoch_seed)
    totals = EpochTotals()
    learner.grad_norms.reset()
    order: Iterable[torch.Tensor] = epoch_batches(
        len(batches.split),
        params.batch_size,
        gen,
        shuffle=True,
        drop_last=True,
        rank=ctx.rank,
        world=ctx.world,
    )
    for idx in order:
        t0 = time.perf_counter()
        x, y, soft = batches(idx, gen)
        t1 = time.perf_counter()
        logits, loss, grad_norm = train_step(learner, net, x, soft)
        t2 = time.perf_counter()
        n = len(idx)
        totals.loss += float(loss.detach()) * n
        totals.correct += float((logits.argmax(-1) == y).sum())
        totals.seen += n
        totals.grad_norm += float(grad_norm) * n
        totals.data_s += t1 - t0
        totals.step_s += t2 - t1
        progress(n * ctx.world)
    return totals.stats(frozen, ctx.world)


def validate(
    model: torch.nn.Module,
    split: TensorSplit,
    pre: Preprocess,
    device: torch.device,
    amp: torch.dtype | None,
    num_classes: int,
) -> dict[str, float]:
    """Loss, accuracy and macro-F1 of ``model`` on ``split`` (no TTA, no calibration)."""
    probs = predict(
        model,
        split,
        pre,
        device,
        batch_size=VALIDATION_BATCH,
        tta=NO_TTA,
        temperature=1.0,
        autocast_dtype=amp,
    )
    return quick_scores(split.labels.numpy(), probs, num_classes)
