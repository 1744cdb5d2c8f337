"""DVC stage ``train``: timm transfer learning on the packed splits (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from emotion import scratch
from emotion.atomic import write_json, write_text
from emotion.config import load_sections
from emotion.distributed import broadcast, setup, teardown
from emotion.manifest import to_csv_text
from emotion.model import ModelSpec
from emotion.params.model import ModelParams
from emotion.params.train import TrainParams
from emotion.scratch import resume_dir
from emotion.stage import log, run_stage, worker_count
from emotion.tensordata import AugmentConfig, TensorSplit
from emotion.trainer import TrainConfig, Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output (labels, val)")
    parser.add_argument(
        "--train", type=Path, help="folder with the training split (default: --data)"
    )
    parser.add_argument("--models", required=True, type=Path, help="folder for best_model.pth")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, model=ModelParams, train=TrainParams)
    m, t = p.model, p.train
    ctx = setup()
    torch.set_num_threads(max(1, worker_count() // ctx.world))
    classes = json.loads((args.data / "labels.json").read_text())["classes"]
    train_dir = args.train or args.data
    train = TensorSplit.load(train_dir, "train", classes)
    val = TensorSplit.load(args.data, "val", classes)
    spec = ModelSpec(
        m.name,
        len(classes),
        m.in_chans,
        m.pretrained,
        m.pretrained_file,
        m.head_hidden,
        m.head_dropout,
    )
    augment = AugmentConfig(
        t.aug_hflip,
        t.aug_rotation_deg,
        tuple(t.aug_scale),
        t.aug_translate,
        t.aug_brightness,
        t.aug_contrast,
        t.aug_erasing_prob,
    )
    cfg = TrainConfig(
        t.seed,
        t.epochs,
        t.batch_size,
        t.freeze_backbone_epochs,
        t.backbone_lr,
        t.head_lr,
        t.weight_decay,
        t.warmup_epochs,
        t.label_smoothing,
        t.mixup_alpha,
        t.grad_clip,
        t.ema_decay,
        t.class_weights,
        t.amp,
        t.patience,
        m.image_size,
        augment,
    )
    snapshot = {"model": m.model_dump(), "train": t.model_dump(), "world_size": ctx.world}
    state_dir, run_id = broadcast(ctx, resume_dir("train") if ctx.is_main else None)
    trainer = Trainer(
        spec,
        cfg,
        train,
        val,
        classes,
        ctx,
        args.models,
        state_dir=state_dir,
        run_id=run_id,
        snapshot=snapshot,
    )
    result = trainer.fit()

    if ctx.is_main:
        n_params = sum(p.numel() for p in trainer.model.parameters())
        write_json(
            args.metrics,
            {
                "best_epoch": result.best["epoch"],
                "best_source": result.best["source"],
                "val_accuracy": round(result.best["val_accuracy"], 6),
                "val_macro_f1": round(result.best["val_macro_f1"], 6),
                "val_loss": round(result.best["val_loss"], 6),
                "epochs_run": len(result.history),
                "stopped_early": result.stopped_early,
                "parameters": n_params,
            },
        )
        write_text(args.plots / "history.csv", to_csv_text(pd.DataFrame(result.history), "%.6g"))
        write_text(args.plots / "timing.csv", to_csv_text(pd.DataFrame(result.timing)))
        log.info(
            "best epoch %d (%s): val accuracy %.4f, macro-F1 %.4f; %d parameters, %s",
            result.best["epoch"],
            result.best["source"],
            result.best["val_accuracy"],
            result.best["val_macro_f1"],
            n_params,
            f"world size {ctx.world}" if ctx.world > 1 else "1 process",
        )
        scratch.clear(state_dir)
    teardown(ctx)


if __name__ == "__main__":
    run_stage(main)
