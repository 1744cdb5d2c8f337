"""The training run: the original report's recipe on the fast data path, with resume and DDP.

Recipe: optional frozen-backbone phase (head only), then discriminative learning rates; AdamW or
SGD with Nesterov momentum (``train.optimizer``, timm factory), optionally sharpness-aware
(``train.sam_rho``); linear warmup + cosine decay per step (timm scheduler); MixUp + label
smoothing (timm Mixup) with class-weighted soft-target cross-entropy; gradient clipping; EMA of
weights (timm ModelEmaV3), validating raw and EMA weights and keeping the better; early stopping
on validation macro-F1.

The parts, after timm: :mod:`~emotion.training.optim` (optimiser, schedule, AMP, SAM),
:mod:`~emotion.training.epoch` (``train_one_epoch``, ``validate``),
:mod:`~emotion.training.checkpoint_saver` (best epoch, resume state, the published checkpoint)
and :mod:`~emotion.training.logrows` (the per-epoch rows). :class:`Trainer` wires them and runs
the epochs; its rows feed the live log in ``live_dir`` (:mod:`emotion.training.livelog`), which
a resumed run rebuilds by replaying them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from emotion.core.distributed import DistContext
from emotion.core.errors import DataError
from emotion.training import checkpoint
from emotion.training.checkpoint_saver import CheckpointSaver
from emotion.training.diagnostics import Blocks, weight_histograms
from emotion.training.epoch import (
    Learner,
    TrainBatches,
    create_learner,
    inverse_frequency_weights,
    seed_everything,
    train_one_epoch,
    validate,
)
from emotion.training.livelog import LiveLog
from emotion.training.logrows import (
    RunRecord,
    diagnostics,
    history_row,
    learning_rates,
    timing_row,
)
from emotion.training.model import EmotionNet, build_model, normalization
from emotion.training.optim import autocast_dtype
from emotion.training.params import ModelParams, TrainParams
from emotion.training.tensordata import Preprocess, TensorSplit, steps_per_epoch
from emotion.vision.preprocessing import PreprocessingContract

log = logging.getLogger("emotion.train")


@dataclass
class TrainResult:
    """What the stage reports."""

    best: dict[str, Any]
    history: list[dict[str, Any]]
    timing: list[dict[str, float]]
    histograms: list[dict[str, Any]]
    resumed_from: int
    stopped_early: bool


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


def training_model(
    model_params: ModelParams,
    params: TrainParams,
    num_classes: int,
    device: torch.device,
) -> EmotionNet:
    """A fresh model on ``device``, in channels_last layout with ``train.channels_last``."""
    model = build_model(model_params, num_classes).to(device)
    return model.to(memory_format=torch.channels_last) if params.channels_last else model


class Trainer:
    """One training run: the recipe's parts for ``params``, and :meth:`fit` to run the epochs.

    ``out_dir`` gets ``best_model.pth``; the resume state lives in ``state_dir`` and is taken up
    only by a run with the same ``run_id``; ``live_dir`` (if given) gets the live log.
    """

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
        self.params, self.val, self.classes, self.ctx = params, val, classes, ctx
        self.live_dir, device = live_dir, ctx.device
        seed_everything(params.seed)
        model = training_model(model_params, params, len(classes), device)
        contract = preprocessing_contract(model, model_params, train)
        self.pre = Preprocess(contract)
        self.batches = TrainBatches.create(train, self.pre, params, len(classes), device)
        self.amp = autocast_dtype(params.amp, device)
        self.steps = steps_per_epoch(len(train), params.batch_size, ctx.world)
        if self.steps == 0:
            raise DataError(
                f"train.batch_size {params.batch_size} is larger than the training split per"
                f" process ({len(train)} images / {ctx.world} process(es)); lower it"
            )
        counts = train.class_counts(len(classes))
        weights = inverse_frequency_weights(counts).to(device) if params.class_weights else None
        self.learner: Learner = create_learner(model, params, self.steps, self.amp, device, weights)
        self.record = RunRecord()
        run = checkpoint.describe_run(classes, model_params, contract, params, ctx.world)
        self.saver = CheckpointSaver(
            self.learner,
            self.record,
            run,
            ctx,
            out_dir=out_dir,
            state_dir=state_dir,
            run_id=run_id,
        )

    @property
    def model(self) -> EmotionNet:
        return self.learner.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.learner.opt.optimizer

    @property
    def blocks(self) -> Blocks:
        """The model's blocks, as the diagnostics name them."""
        return self.learner.grad_norms.blocks

    def try_resume(self) -> int:
        """Continue from the resume state if it belongs to this exact run; returns epochs done."""
        return self.saver.resume()

    def train_epoch(self, epoch: int, progress: Callable[[int], None]) -> dict[str, Any]:
        """Train one epoch (0-based); ``progress(images)`` after each step."""
        return train_one_epoch(epoch, self.learner, self.batches, self.params, self.ctx, progress)

    def _validate(self, model: torch.nn.Module) -> dict[str, float]:
        """Loss, accuracy and macro-F1 of ``model`` (raw or EMA weights) on validation."""
        return validate(model, self.val, self.pre, self.ctx.device, self.amp, len(self.classes))

    def fit(self, on_epoch_end: Callable[[int], None] | None = None) -> TrainResult:
        """Train until ``epochs`` or early stopping; ``on_epoch_end(epochs_done)`` after each.

        Each finished epoch is logged to ``live_dir`` (if given) right after its resume state;
        the run ends by publishing the best checkpoint as ``best_model.pth``.
        """
        resumed = self.try_resume()
        live = self._open_log()
        stopped_early = False
        p = self.params
        total = (p.epochs - resumed) * self.steps * p.batch_size * self.ctx.world
        bar = tqdm(
            total=total,
            desc="train",
            unit="img",
            disable=None if self.ctx.is_main else True,
        )
        for epoch in range(resumed, p.epochs):
            if self.saver.epochs_since_best >= p.patience:
                stopped_early = True
                break
            self._run_epoch(epoch, bar.update)
            if live is not None:
                r = self.record
                live.epoch(r.history[-1], r.timing[-1], r.histograms[-1])
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
        bar.close()
        if live is not None:
            live.close()
        self.saver.publish()
        r = self.record
        return TrainResult(
            self.saver.best, r.history, r.timing, r.histograms, resumed, stopped_early
        )

    def _open_log(self) -> LiveLog | None:
        """The live log (main process only), holding the epochs a resumed run already did."""
        if self.live_dir is None or not self.ctx.is_main:
            return None
        r = self.record
        return LiveLog.replay(self.live_dir, r.history, r.timing, r.histograms)

    def _run_epoch(self, epoch: int, progress: Callable[[int], None]) -> None:
        """Train and validate one epoch, keep the better weights, write the resume state."""
        start = time.perf_counter()
        lrs = learning_rates(self.optimizer)
        stats = self.train_epoch(epoch, progress)
        raw = self._validate(self.model)
        ema = self._validate(self.learner.ema.module) if self.learner.ema else None
        source, scores = ("ema", ema) if ema and ema["macro_f1"] > raw["macro_f1"] else ("raw", raw)
        extra = diagnostics(lrs, self.blocks, self.learner.grad_norms, self.model, stats)
        row = history_row(epoch + 1, stats, raw, ema, extra)
        timing = timing_row(epoch + 1, time.perf_counter() - start, stats)
        self.record.add(row, timing, weight_histograms(self.blocks))
        self.saver.update(epoch + 1, source, scores)
        self.saver.save_recovery()
        if self.ctx.is_main:
            self._log_epoch(epoch + 1, row, scores)

    def _log_epoch(self, epoch: int, row: dict[str, Any], scores: dict[str, float]) -> None:
        best = self.saver.best
        log.info(
            "epoch %d/%d %s: loss %.4f, val acc %.4f, val macro-F1 %.4f (%s best %.4f @%d), %.1fs",
            epoch,
            self.params.epochs,
            row["phase"],
            row["train/loss"],
            scores["accuracy"],
            scores["macro_f1"],
            best["source"],
            best["val_macro_f1"],
            best["epoch"],
            self.record.timing[-1]["timing/epoch_s"],
        )
