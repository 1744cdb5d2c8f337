"""The training loop: the original report's recipe on the fast data path, with resume and DDP.

Recipe: optional frozen-backbone phase (head only), then discriminative learning rates; AdamW or
SGD with Nesterov momentum (``train.optimizer``, timm factory), optionally sharpness-aware
(``train.sam_rho``); linear warmup + cosine decay per step (timm scheduler); MixUp + label
smoothing (timm Mixup) with class-weighted soft-target cross-entropy; gradient clipping; EMA of
weights (timm ModelEmaV3), validating raw and EMA weights and keeping the better; early stopping
on validation macro-F1. Every epoch reseeds its RNGs from (seed, epoch), so a resumed run replays
exactly what an uninterrupted one would have done.

Resume state (``last.pth``, and ``best.pth`` for the best weights so far) lives in ``state_dir``,
outside the stage's DVC outputs; :meth:`Trainer.fit` always ends by writing ``best_model.pth``
from it, so a resumed run re-creates the output DVC deleted before the stage started. Its history
rows (and timing rows, weight histograms) are the source of truth for the live log in
``live_dir`` (:mod:`emotion.training.livelog`), which a resumed run rebuilds by replaying them.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from timm.data import Mixup
from timm.data.mixup import mixup_target
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from emotion.core.atomic import write_bytes
from emotion.core.distributed import DistContext
from emotion.core.errors import DataError, EmotionError
from emotion.training import checkpoint
from emotion.training.diagnostics import GradNorms, model_blocks, weight_histograms, weight_norms
from emotion.training.evaluation import predict, quick_scores
from emotion.training.livelog import LiveLog
from emotion.training.model import (
    EmotionNet,
    build_model,
    normalization,
    param_groups,
    set_backbone_trainable,
)
from emotion.training.params import ModelParams, TrainParams
from emotion.training.sam import SharpnessAwareAscent, frozen_norm_statistics
from emotion.training.tensordata import (
    BatchAugment,
    Preprocess,
    TensorSplit,
    epoch_batches,
    steps_per_epoch,
)
from emotion.vision.preprocessing import PreprocessingContract
from emotion.vision.tta import NO_TTA

log = logging.getLogger("emotion.train")
VALIDATION_BATCH = 256  #: images per forward pass when validating (memory only, not results)


@dataclass
class TrainResult:
    """What the stage reports."""

    best: dict[str, Any]
    history: list[dict[str, Any]]
    timing: list[dict[str, float]]
    histograms: list[dict[str, Any]]
    resumed_from: int
    stopped_early: bool


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


def preprocessing_contract(
    model: EmotionNet, params: ModelParams, train: TensorSplit
) -> PreprocessingContract:
    """How clients must feed ``model``: the stored images' size, the backbone's normalisation."""
    mean, std = normalization(model, params.in_chans)
    return PreprocessingContract(
        source_size=int(train.images.shape[-1]),
        image_size=params.image_size,
        in_chans=params.in_chans,
        mean=tuple(mean),
        std=tuple(std),
        face_margin=None,
    )


def seed_everything(seed: int) -> None:
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


class Trainer:
    """Owns the model, optimiser, schedule and EMA for one run."""

    def __init__(
        self,
        model_params: ModelParams,
        params: TrainParams,
        train: TensorSplit,
        val: TensorSplit,
        classes: list[str],
        ctx: DistContext,
        out_dir: Path,
        *,
        state_dir: Path,
        run_id: str,
        live_dir: Path | None = None,
    ) -> None:
        self.model_params, self.params = model_params, params
        self.train, self.val, self.classes, self.ctx = train, val, classes, ctx
        self.out_dir, self.state_dir, self.run_id = out_dir, state_dir, run_id
        self.live_dir = live_dir
        seed_everything(params.seed)
        self.device = ctx.device
        self.model: EmotionNet = self._build_model(len(classes))
        self.contract = preprocessing_contract(self.model, model_params, train)
        self.pre = Preprocess(self.contract)
        self.augment = BatchAugment(params)
        self.amp = autocast_dtype(params.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.steps = steps_per_epoch(len(train), params.batch_size, ctx.world)
        if self.steps == 0:
            raise DataError(
                f"train.batch_size {params.batch_size} is larger than the training split per"
                f" process ({len(train)} images / {ctx.world} process(es)); lower it"
            )
        self.optimizer, self.scheduler, self.sam = self._optimisation()
        self.ema = (
            ModelEmaV3(self.model, decay=params.ema_decay, use_warmup=True)
            if params.ema_decay > 0
            else None
        )
        self.mixup = (
            Mixup(
                mixup_alpha=params.mixup_alpha,
                label_smoothing=params.label_smoothing,
                num_classes=len(classes),
            )
            if params.mixup_alpha > 0
            else None
        )
        counts = train.class_counts(len(classes))
        self.class_weights = (
            inverse_frequency_weights(counts).to(self.device) if params.class_weights else None
        )
        self.blocks = model_blocks(self.model)
        self.grad_norms = GradNorms(self.blocks)
        self.history: list[dict[str, Any]] = []
        self.timing: list[dict[str, float]] = []
        self.histograms: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"val_macro_f1": -1.0, "epoch": -1}
        self.epochs_since_best = 0
        self.start_epoch = 0
        self.global_step = 0

    def _build_model(self, num_classes: int) -> EmotionNet:
        """The model on the device, in channels_last layout with ``train.channels_last``."""
        model = build_model(self.model_params, num_classes).to(self.device)
        return model.to(memory_format=torch.channels_last) if self.params.channels_last else model

    def _optimisation(
        self,
    ) -> tuple[torch.optim.Optimizer, CosineLRScheduler, SharpnessAwareAscent | None]:
        """``train.optimizer`` over discriminative param groups; per-step warmup + cosine decay;
        SAM's ascent with ``train.sam_rho`` > 0."""
        p = self.params
        groups = param_groups(self.model, p.backbone_lr, p.head_lr, p.weight_decay)
        optimizer = create_optimizer_v2(
            groups, opt=p.optimizer, lr=p.head_lr, weight_decay=p.weight_decay, momentum=p.momentum
        )
        scheduler = CosineLRScheduler(
            optimizer,
            t_initial=p.epochs * self.steps,
            lr_min=0.0,  # decaying every group to 0 keeps the backbone/head LR ratio throughout
            warmup_t=int(p.warmup_epochs * self.steps),
            warmup_lr_init=0.0,
            warmup_prefix=True,
            t_in_epochs=False,
        )
        sam = SharpnessAwareAscent(list(self.model.parameters()), p.sam_rho) if p.sam_rho else None
        return optimizer, scheduler, sam

    # ------------------------------------------------------------------ state

    @property
    def last_path(self) -> Path:
        """Resume state after the last finished epoch."""
        return self.state_dir / "last.pth"

    @property
    def best_state_path(self) -> Path:
        """The best checkpoint so far (published to :attr:`best_path` when the run ends)."""
        return self.state_dir / "best.pth"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best_model.pth"

    def state(self) -> dict[str, Any]:
        return {
            "format_version": checkpoint.FORMAT_VERSION,
            "run_id": self.run_id,
            "epoch": len(self.history),
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "timing": self.timing,
            "histograms": self.histograms,
            "best": self.best,
            "epochs_since_best": self.epochs_since_best,
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])},
            "world_size": self.ctx.world,
        }

    def try_resume(self) -> int:
        """Continue from ``last.pth`` if it belongs to this exact run; returns epochs done."""
        if not self.last_path.exists():
            return 0
        try:
            state = checkpoint.load(self.last_path, self.device)
        except Exception as exc:
            log.warning("ignoring unreadable %s (%s); starting fresh", self.last_path, exc)
            return 0
        if state.get("run_id") != self.run_id:
            log.info("%s is from another configuration or dataset; starting fresh", self.last_path)
            return 0
        if state.get("world_size", 1) != self.ctx.world:
            raise EmotionError(
                f"{self.last_path} was written by {state.get('world_size', 1)} training"
                f" process(es) but this run has {self.ctx.world}: resuming would change the"
                " effective batch mid-run. Launch the same number of processes (train.processes,"
                f" train.launcher), or delete {self.state_dir} to start this run over"
            )
        if not self.best_state_path.is_file():
            log.warning("%s is missing; starting fresh", self.best_state_path)
            return 0
        self.model.load_state_dict(state["model"])
        if self.ema and state["ema"] is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history, self.timing, self.best = state["history"], state["timing"], state["best"]
        self.histograms = state["histograms"]
        self.epochs_since_best, self.global_step = state["epochs_since_best"], state["global_step"]
        self.start_epoch = state["epoch"]
        log.info("resuming from %s after epoch %d", self.last_path, self.start_epoch)
        return self.start_epoch

    # ------------------------------------------------------------------ loop

    def _soft_targets(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mixup is not None:
            return self.mixup(x, y)
        return x, mixup_target(y, len(self.classes), lam=1.0, smoothing=self.params.label_smoothing)

    def _forward_model(self, frozen: bool) -> torch.nn.Module:
        if self.ctx.world == 1:
            return self.model
        return DistributedDataParallel(self.model, find_unused_parameters=frozen)

    def _backward(
        self, net: torch.nn.Module, x: torch.Tensor, soft: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward (autocast) and backward of the class-weighted soft-target loss, fresh grads."""
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            logits = net(x)
        loss = soft_cross_entropy(logits, soft, self.class_weights)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return logits, loss

    def _step(
        self, net: torch.nn.Module, x: torch.Tensor, soft: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step (AMP, SAM, clipping, schedule, EMA); returns (logits, loss, grad
        norm) of the pass at the current weights."""
        logits, loss = self._backward(net, x, soft)
        if self.sam is not None and self.sam.ascend():
            with frozen_norm_statistics(self.model):
                self._backward(net, x, soft)
            self.sam.restore()
        self.scaler.unscale_(self.optimizer)
        self.grad_norms.add()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in self.model.parameters() if p.requires_grad],
            self.params.grad_clip if self.params.grad_clip > 0 else float("inf"),
        )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.global_step += 1
        self.scheduler.step_update(self.global_step)
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return logits, loss, grad_norm

    def train_epoch(self, epoch: int, progress: Callable[[int], None]) -> dict[str, float]:
        frozen = epoch < self.params.freeze_backbone_epochs
        self.model.train()
        set_backbone_trainable(self.model, not frozen)
        net = self._forward_model(frozen)
        epoch_seed = self.params.seed * 10_000 + epoch
        seed_everything(epoch_seed)
        gen = torch.Generator().manual_seed(epoch_seed)
        totals = dict.fromkeys(("loss", "correct", "grad_norm", "data_s", "step_s"), 0.0)
        totals["seen"] = 0
        self.grad_norms.reset()
        batches = epoch_batches(
            len(self.train),
            self.params.batch_size,
            gen,
            shuffle=True,
            drop_last=True,
            rank=self.ctx.rank,
            world=self.ctx.world,
        )
        for idx in batches:
            t0 = time.perf_counter()
            y = self.train.labels[idx].to(self.device)
            x = self.pre.to_float(self.train.images[idx], self.device)
            x = self.pre.finish(self.augment(x, gen))
            x = self.augment.erase(x)
            x, soft = self._soft_targets(x, y)
            t1 = time.perf_counter()
            logits, loss, grad_norm = self._step(net, x, soft)
            t2 = time.perf_counter()
            n = len(idx)
            totals["loss"] += float(loss.detach()) * n
            totals["correct"] += float((logits.argmax(-1) == y).sum())
            totals["seen"] += n
            totals["grad_norm"] += float(grad_norm) * n
            totals["data_s"] += t1 - t0
            totals["step_s"] += t2 - t1
            progress(n * self.ctx.world)
        seen = max(totals["seen"], 1)
        return {
            "train_loss": totals["loss"] / seen,
            "train_accuracy": totals["correct"] / seen,
            "grad_norm": totals["grad_norm"] / seen,
            "data_s": totals["data_s"],
            "step_s": totals["step_s"],
            "images": totals["seen"] * self.ctx.world,
            "frozen": frozen,
        }

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        probs = predict(
            model,
            self.val,
            self.pre,
            self.device,
            batch_size=VALIDATION_BATCH,
            tta=NO_TTA,
            temperature=1.0,
            autocast_dtype=self.amp,
        )
        return quick_scores(self.val.labels.numpy(), probs, len(self.classes))

    def _lrs(self) -> dict[str, float]:
        """Each param group's learning rate (by group name) at the start of an epoch."""
        groups = enumerate(self.optimizer.param_groups)
        return {f"lr/{g.get('name', i)}": g["lr"] for i, g in groups}

    def _diagnostics(self, lrs: dict[str, float], stats: dict[str, Any]) -> dict[str, float]:
        """LRs, then weight and (epoch-mean, unclipped) gradient norms: per block and total."""
        return {
            **lrs,
            **{f"weight_norm/{k}": v for k, v in weight_norms(self.blocks).items()},
            "weight_norm/total": self._weight_norm(),
            **{f"grad_norm/{k}": v for k, v in self.grad_norms.mean().items()},
            "grad_norm/total": stats["grad_norm"],
        }

    def _save_best(self, epoch: int, source: str, scores: dict[str, float]) -> None:
        weights = self.ema.module if source == "ema" and self.ema else self.model
        self.best = {"epoch": epoch, "source": source, **{f"val_{k}": v for k, v in scores.items()}}
        if self.ctx.is_main:
            checkpoint.save(
                {
                    "format_version": checkpoint.FORMAT_VERSION,
                    "state_dict": copy.deepcopy(weights.state_dict()),
                    "epoch": epoch,
                    "best": self.best,
                    "classes": self.classes,
                    "model": self.model_params.model_dump(),
                    "preprocessing": self.contract.to_dict(),
                    "config": {
                        "model": self.model_params.model_dump(),
                        "train": self.params.model_dump(),
                        "world_size": self.ctx.world,
                    },
                    "history": self.history,
                },
                self.best_state_path,
            )

    def _publish_best(self) -> None:
        """Write the declared output ``best_model.pth`` (byte for byte the best checkpoint)."""
        if self.ctx.is_main:
            write_bytes(self.best_path, self.best_state_path.read_bytes())

    def _weight_norm(self) -> float:
        return float(
            torch.sqrt(sum(p.detach().float().pow(2).sum() for p in self.model.parameters()))
        )

    def _open_log(self) -> LiveLog | None:
        """The live log (main process only), holding the epochs a resumed run already did."""
        if self.live_dir is None or not self.ctx.is_main:
            return None
        return LiveLog.replay(self.live_dir, self.history, self.timing, self.histograms)

    def fit(self, on_epoch_end: Callable[[int], None] | None = None) -> TrainResult:
        """Train until ``epochs`` or early stopping; ``on_epoch_end(epochs_done)`` after each.

        Each finished epoch is logged to ``live_dir`` (if given) right after its resume state.
        """
        resumed = self.try_resume()
        live = self._open_log()
        stopped_early = False
        p = self.params
        total = (p.epochs - self.start_epoch) * self.steps * p.batch_size * self.ctx.world
        bar = tqdm(
            total=total, desc="train", unit="img", disable=None if self.ctx.is_main else True
        )
        for epoch in range(self.start_epoch, p.epochs):
            if self.epochs_since_best >= p.patience:
                stopped_early = True
                break
            self._run_epoch(epoch, bar.update)
            if live is not None:
                live.epoch(self.history[-1], self.timing[-1], self.histograms[-1])
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
        bar.close()
        if live is not None:
            live.close()
        self._publish_best()
        return TrainResult(
            self.best, self.history, self.timing, self.histograms, resumed, stopped_early
        )

    def _run_epoch(self, epoch: int, progress: Callable[[int], None]) -> None:
        """Train and validate one epoch, keep the better weights, write the resume state."""
        start = time.perf_counter()
        lrs = self._lrs()
        stats = self.train_epoch(epoch, progress)
        raw = self.validate(self.model)
        ema = self.validate(self.ema.module) if self.ema else None
        source, scores = ("ema", ema) if ema and ema["macro_f1"] > raw["macro_f1"] else ("raw", raw)
        row = history_row(epoch + 1, stats, raw, ema, self._diagnostics(lrs, stats))
        self.history.append(row)
        self.timing.append(timing_row(epoch + 1, time.perf_counter() - start, stats))
        self.histograms.append(weight_histograms(self.blocks))
        if scores["macro_f1"] > self.best["val_macro_f1"]:
            self._save_best(epoch + 1, source, scores)
            self.epochs_since_best = 0
        else:
            self.epochs_since_best += 1
        if self.ctx.is_main:
            checkpoint.save(self.state(), self.last_path)
            log.info(
                "epoch %d/%d %s: loss %.4f, val acc %.4f, val macro-F1 %.4f"
                " (%s best %.4f @%d), %.1fs",
                epoch + 1,
                self.params.epochs,
                row["phase"],
                row["train/loss"],
                scores["accuracy"],
                scores["macro_f1"],
                self.best["source"],
                self.best["val_macro_f1"],
                self.best["epoch"],
                self.timing[-1]["timing/epoch_s"],
            )


def _r(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


def history_row(
    epoch: int,
    stats: dict[str, Any],
    raw: dict[str, float],
    ema: dict[str, float] | None,
    diagnostics: dict[str, float],
) -> dict[str, Any]:
    """One epoch, keyed by live-log series name: train and validation (raw, EMA) scores, the
    train/validation gap, then :meth:`Trainer._diagnostics` (LRs, per-block norms). Every row has
    the same series (dvc.yaml declares their files), so without EMA ``val_ema`` repeats ``val``.

    Train loss and accuracy are means over the epoch's augmented (MixUp) batches while the weights
    change; the gap (``train - val`` accuracy, ``val - train`` loss, raw weights) is indicative.
    """
    row: dict[str, Any] = {
        "epoch": epoch,
        "phase": "frozen" if stats["frozen"] else "full",
        "train/loss": _r(stats["train_loss"]),
        "train/accuracy": _r(stats["train_accuracy"]),
        "val/loss": _r(raw["loss"]),
        "val/accuracy": _r(raw["accuracy"]),
        "val/macro_f1": _r(raw["macro_f1"]),
    }
    ema = raw if ema is None else ema  # ema_decay 0: the "EMA" is the raw weights themselves
    row.update({f"val_ema/{k}": _r(ema[k]) for k in ("loss", "accuracy", "macro_f1")})
    row["gap/accuracy"] = _r(stats["train_accuracy"] - raw["accuracy"])
    row["gap/loss"] = _r(raw["loss"] - stats["train_loss"])
    row.update({k: float(f"{v:.6g}") for k, v in diagnostics.items()})
    return row


def timing_row(epoch: int, elapsed: float, stats: dict[str, Any]) -> dict[str, float]:
    """One epoch's wall-clock figures (live-log series ``timing/*``, apart from the metrics):
    seconds, training throughput, and the share of training time spent preparing batches."""
    busy = max(stats["data_s"] + stats["step_s"], 1e-9)
    return {
        "epoch": epoch,
        "timing/epoch_s": round(elapsed, 3),
        "timing/images_per_s": round(stats["images"] / busy, 1),
        "timing/loader_seconds_fraction": round(stats["data_s"] / busy, 4),
    }
