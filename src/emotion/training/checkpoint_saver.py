"""Best-epoch tracking, the resume state and the published checkpoint, after timm's
``CheckpointSaver``.

Resume state (``last.pth``, and ``best.pth`` for the best weights so far) lives in ``state_dir``,
outside the stage's DVC outputs; a run always ends by publishing ``best.pth`` as the declared
output ``best_model.pth``, so a resumed run re-creates the output DVC deleted before the stage
started. Only the main process writes files; every process tracks the best epoch.
"""

from __future__ import annotations

import copy
import logging
import random
from pathlib import Path
from typing import Any

import torch

from emotion.core.atomic import write_bytes
from emotion.core.distributed import DistContext
from emotion.core.errors import EmotionError
from emotion.training import checkpoint
from emotion.training.epoch import Learner
from emotion.training.logrows import RunRecord

log = logging.getLogger("emotion.train")


class CheckpointSaver:
    """Keeps the best epoch (by validation macro-F1) and the state a resumed run continues from.

    ``learner`` and ``record`` are what it saves and, on resume, restores; ``run`` is what the
    best checkpoint stores beside the weights (:func:`checkpoint.describe_run`); a resume state
    is only taken up when it carries the same ``run_id``.
    """

    def __init__(
        self,
        learner: Learner,
        record: RunRecord,
        run: dict[str, Any],
        ctx: DistContext,
        *,
        out_dir: Path,
        state_dir: Path,
        run_id: str,
    ) -> None:
        self.learner, self.record, self.run, self.ctx = learner, record, run, ctx
        self.out_dir, self.state_dir, self.run_id = out_dir, state_dir, run_id
        self.best: dict[str, Any] = {"val_macro_f1": -1.0, "epoch": -1}
        self.epochs_since_best = 0

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
        """The stage's declared output ``best_model.pth``."""
        return self.out_dir / "best_model.pth"

    def update(self, epoch: int, source: str, scores: dict[str, float]) -> None:
        """Track epoch ``epoch`` (1-based), validated with the ``source`` weights (``raw`` or
        ``ema``): a better macro-F1 than so far becomes the best checkpoint."""
        if scores["macro_f1"] > self.best["val_macro_f1"]:
            self._save_best(epoch, source, scores)
            self.epochs_since_best = 0
        else:
            self.epochs_since_best += 1

    def _save_best(self, epoch: int, source: str, scores: dict[str, float]) -> None:
        ema, model = self.learner.ema, self.learner.model
        weights = ema.module if source == "ema" and ema else model
        self.best = {
            "epoch": epoch,
            "source": source,
            **{f"val_{k}": v for k, v in scores.items()},
        }
        if self.ctx.is_main:
            state_dict = copy.deepcopy(weights.state_dict())
            best = checkpoint.best_checkpoint(
                state_dict,
                epoch=epoch,
                best=self.best,
                run=self.run,
                history=self.record.history,
            )
            checkpoint.save(best, self.best_state_path)

    def recovery_state(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly where this one is now."""
        learner, opt, record = self.learner, self.learner.opt, self.record
        return {
            "format_version": checkpoint.FORMAT_VERSION,
            "run_id": self.run_id,
            "epoch": len(record.history),
            "global_step": learner.global_step,
            "model": learner.model.state_dict(),
            "ema": learner.ema.module.state_dict() if learner.ema else None,
            "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict(),
            "scaler": opt.scaler.state_dict(),
            "history": record.history,
            "timing": record.timing,
            "histograms": record.histograms,
            "best": self.best,
            "epochs_since_best": self.epochs_since_best,
            "rng": {
                "torch": torch.get_rng_state(),
                "python": list(random.getstate()[1]),
            },
            "world_size": self.ctx.world,
        }

    def save_recovery(self) -> None:
        """Write ``last.pth`` (main process)."""
        if self.ctx.is_main:
            checkpoint.save(self.recovery_state(), self.last_path)

    def resume(self) -> int:
        """Continue from ``last.pth`` if it belongs to this exact run; returns epochs done."""
        state = self._recovery()
        if state is None:
            return 0
        learner, opt, record = self.learner, self.learner.opt, self.record
        learner.model.load_state_dict(state["model"])
        if learner.ema and state["ema"] is not None:
            learner.ema.module.load_state_dict(state["ema"])
        opt.optimizer.load_state_dict(state["optimizer"])
        opt.scheduler.load_state_dict(state["scheduler"])
        opt.scaler.load_state_dict(state["scaler"])
        record.history, record.timing = state["history"], state["timing"]
        record.histograms, self.best = state["histograms"], state["best"]
        self.epochs_since_best, learner.global_step = (
            state["epochs_since_best"],
            state["global_step"],
        )
        log.info("resuming from %s after epoch %d", self.last_path, state["epoch"])
        return state["epoch"]

    def _recovery(self) -> dict[str, Any] | None:
        """``last.pth`` if it is this run's (and ``best.pth`` is there), else None."""
        if not self.last_path.exists():
            return None
        try:
            state = checkpoint.load(self.last_path, self.ctx.device)
        except Exception as exc:
            log.warning("ignoring unreadable %s (%s); starting fresh", self.last_path, exc)
            return None
        if state.get("run_id") != self.run_id:
            log.info(
                "%s is from another configuration or dataset; starting fresh",
                self.last_path,
            )
            return None
        if state.get("world_size", 1) != self.ctx.world:
            raise EmotionError(
                f"{self.last_path} was written by {state.get('world_size', 1)} training"
                f" process(es) but this run has {self.ctx.world}: resuming would change the"
                " effective batch mid-run. Launch the same number of processes (train.processes,"
                f" train.launcher), or delete {self.state_dir} to start this run over"
            )
        if not self.best_state_path.is_file():
            log.warning("%s is missing; starting fresh", self.best_state_path)
            return None
        return state

    def publish(self) -> None:
        """Write the declared output ``best_model.pth`` (byte for byte the best checkpoint)."""
        if self.ctx.is_main:
            write_bytes(self.best_path, self.best_state_path.read_bytes())
