"""The rows a run logs per epoch: history (scores, gap, diagnostics), timing, weight histograms.

They are the source of truth for the live log (:mod:`emotion.training.livelog`) and part of the
resume state, so a resumed run rebuilds the log of an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from emotion.training.diagnostics import Blocks, GradNorms, weight_norms


@dataclass
class RunRecord:
    """One row of each kind per finished epoch."""

    history: list[dict[str, Any]] = field(default_factory=list)
    timing: list[dict[str, float]] = field(default_factory=list)
    histograms: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, row: dict[str, Any], timing: dict[str, float], histograms: dict[str, Any]
    ) -> None:
        """Record a finished epoch."""
        self.history.append(row)
        self.timing.append(timing)
        self.histograms.append(histograms)


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Each param group's learning rate (series ``lr/<group name>``), read at an epoch's start."""
    groups = enumerate(optimizer.param_groups)
    return {f"lr/{g.get('name', i)}": g["lr"] for i, g in groups}


def total_weight_norm(model: torch.nn.Module) -> float:
    """The L2 norm of all of ``model``'s parameters together."""
    return float(torch.sqrt(sum(p.detach().float().pow(2).sum() for p in model.parameters())))


def diagnostics(
    lrs: dict[str, float],
    blocks: Blocks,
    grad_norms: GradNorms,
    model: torch.nn.Module,
    stats: dict[str, Any],
) -> dict[str, float]:
    """LRs, then weight and (epoch-mean, unclipped) gradient norms: per block and total."""
    return {
        **lrs,
        **{f"weight_norm/{k}": v for k, v in weight_norms(blocks).items()},
        "weight_norm/total": total_weight_norm(model),
        **{f"grad_norm/{k}": v for k, v in grad_norms.mean().items()},
        "grad_norm/total": stats["grad_norm"],
    }


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
    train/validation gap, then :func:`diagnostics` (LRs, per-block norms). Every row has the
    same series (dvc.yaml declares their files), so without EMA ``val_ema`` repeats ``val``.

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
