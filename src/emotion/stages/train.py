"""The DVC stage ``train``: packed splits in, ``best_model.pth`` and training metrics out.

While it runs, every finished epoch lands in the dvclive folder ``live`` (metrics.json, one tsv
per series, weight histograms; :mod:`emotion.training.livelog`), which ``dvc metrics show`` and
``dvc plots show`` read mid-run. At the end it writes the summary ``reports/train.json`` (its
headline: ``metrics/train.json``) and the environment report (versions, device, git revision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from emotion.core import scratch
from emotion.core.atomic import write_json
from emotion.core.distributed import broadcast, setup, teardown
from emotion.core.envreport import env_report
from emotion.core.errors import EmotionError
from emotion.core.results import write_results
from emotion.core.stage import log, worker_count
from emotion.data.manifest import read_classes
from emotion.training.params import ModelParams, TrainParams
from emotion.training.tensordata import TensorSplit
from emotion.training.trainer import Trainer, TrainResult

#: ``metrics/train.json``: the kept epoch's validation macro-F1 (the rest: ``reports/``).
HEADLINE = {"val_f1": "val_macro_f1"}


def run_train(
    model: ModelParams,
    params: TrainParams,
    *,
    data: Path,
    train_dir: Path,
    models: Path,
    report: Path,
    metrics: Path,
    live: Path,
    env: Path,
) -> TrainResult:
    """Train (resuming an interrupted run of the same stage); also one process of ``torchrun``.

    ``models`` gets ``best_model.pth``, ``report`` the run's summary (``metrics`` its headline),
    ``live`` the per-epoch dvclive log (main process only), ``env`` the environment report.
    """
    ctx = setup()
    check_processes(params, ctx.world)
    torch.set_num_threads(max(1, worker_count() // ctx.world))
    classes = read_classes(data)
    train = TensorSplit.load(train_dir, "train", classes)
    val = TensorSplit.load(data, "val", classes)
    state_dir, run_id = broadcast(ctx, scratch.resume_dir("train") if ctx.is_main else None)
    trainer = Trainer(
        model,
        params,
        train,
        val,
        classes,
        ctx,
        models,
        state_dir=state_dir,
        run_id=run_id,
        live_dir=live,
    )
    result = trainer.fit()
    if ctx.is_main:
        n_params = sum(p.numel() for p in trainer.model.parameters())
        summary = train_metrics(result, n_params)
        rows = kept_epoch_rows(result)
        write_results(summary, rows, report_path=report, metrics_path=metrics, keys=HEADLINE)
        write_json(env, env_report(ctx.device))
        best = result.best
        log.info(
            "best epoch %d (%s): val accuracy %.4f, macro-F1 %.4f; %d parameters, %s",
            best["epoch"],
            best["source"],
            best["val_accuracy"],
            best["val_macro_f1"],
            n_params,
            f"world size {ctx.world}" if ctx.world > 1 else "1 process",
        )
        scratch.clear(state_dir)
    teardown(ctx)
    return result


def check_processes(params: TrainParams, world: int) -> None:
    """The launcher must start ``train.processes`` processes: the count is a param so that it
    decides DVC's rerun and run-cache key (the effective batch is ``batch_size x processes``)."""
    if params.processes != world:
        raise EmotionError(
            f"train.processes is {params.processes} but train.launcher ({params.launcher!r})"
            f" started {world} training process(es): set train.processes to the number of"
            " processes the launcher starts (GPUs per node x nodes), e.g. 'torchrun --standalone"
            " --nproc_per_node=2' with train.processes: 2"
        )


def train_metrics(result: TrainResult, n_params: int) -> dict[str, Any]:
    """``reports/train.json``: the kept epoch's validation scores and how the run went."""
    best = result.best
    return {
        "best_epoch": best["epoch"],
        "best_source": best["source"],
        "val_accuracy": round(best["val_accuracy"], 6),
        "val_macro_f1": round(best["val_macro_f1"], 6),
        "val_loss": round(best["val_loss"], 6),
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "parameters": n_params,
    }


def kept_epoch_rows(result: TrainResult) -> list[dict[str, Any]]:
    """The kept epoch's validation scores with the raw and with the EMA weights (one row each)."""
    (row,) = [r for r in result.history if r["epoch"] == result.best["epoch"]]
    return [
        {"weights": name, **{k: row[f"{series}/{k}"] for k in ("accuracy", "macro_f1", "loss")}}
        for name, series in (("raw", "val"), ("ema", "val_ema"))
    ]
