"""Train/evaluate: backbones, pretrained files, freezing, resume, DDP, diagnostics, metrics."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import timm
import torch

from emotion.core.distributed import DistContext, deterministic_cuda
from emotion.core.errors import EmotionError
from emotion.training import checkpoint
from emotion.training.diagnostics import (
    GradNorms,
    model_blocks,
    weight_distribution_figure,
    weight_histograms,
)
from emotion.training.epoch import inverse_frequency_weights
from emotion.training.evaluation import classification_metrics, expected_calibration_error
from emotion.training.model import (
    build_model,
    create_backbone,
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
)
from emotion.training.trainer import Trainer
from emotion.vision.preprocessing import PreprocessingContract

from .conftest import REPO, params_text, section, tool_env
from .serve_fixtures import free_port

CLASSES = ["angry", "happy", "sad"]


def write_packed(folder: Path, per_class: dict[str, int], size: int = 24, seed: int = 0) -> Path:
    """A tiny balance-stage output whose classes are learnable (bright band position = class)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in per_class.items():
        labels = np.arange(n) % len(CLASSES)
        images = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
        for i, label in enumerate(labels):
            band = slice(label * size // 3, (label + 1) * size // 3)
            images[i, band, :] += 150
        np.save(folder / f"{split}.npy", images)
        frame = pd.DataFrame(
            {
                "index": np.arange(n),
                "path": [f"{split}/{i}.png" for i in range(n)],
                "label": [CLASSES[k] for k in labels],
            }
        )
        frame.to_csv(folder / f"{split}.csv", index=False)
    (folder / "labels.json").write_text(json.dumps({"classes": CLASSES}))
    return folder


TINY_TRAIN = {
    "seed": 3,
    "epochs": 3,
    "batch_size": 16,
    "freeze_backbone_epochs": 0,
    "backbone_lr": 3e-3,
    "head_lr": 3e-3,
    "optimizer": "adamw",
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "sam_rho": 0.0,
    "warmup_epochs": 0.5,
    "label_smoothing": 0.05,
    "mixup_alpha": 0.2,
    "grad_clip": 1.0,
    "ema_decay": 0.99,
    "class_weights": True,
    "amp": "off",
    "patience": 5,
    "aug_erasing_prob": 0.25,
}


def tiny_config(**changes: object) -> TrainParams:
    return section("train", **{**TINY_TRAIN, **changes})


def model_params(name: str = "emotion_cnn_s", **changes: object) -> ModelParams:
    fields = {"name": name, "in_chans": 1, "image_size": 24, "head_hidden": 32}
    return section("model", **{**fields, "head_dropout": 0.1, **changes})


def make_trainer(
    data: Path, out: Path, cfg: TrainParams, name: str = "emotion_cnn_s", *, live: bool = False
) -> Trainer:
    """A trainer writing under ``out`` (its dvclive log in ``out/live`` with ``live``)."""
    train = TensorSplit.load(data, "train", CLASSES)
    val = TensorSplit.load(data, "val", CLASSES)
    return Trainer(
        model_params(name),
        cfg,
        train,
        val,
        CLASSES,
        DistContext(),
        out,
        state_dir=out / "state",
        run_id="run-a",
        live_dir=out / "live" if live else None,
    )


@pytest.fixture
def outside_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path``: dvclive then finds no DVC project and leaves the repo alone."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def live_files(live: Path) -> dict[str, bytes]:
    """A dvclive folder's files, timing series and values left out (they vary run to run)."""
    files = {
        p.relative_to(live).as_posix(): p.read_bytes()
        for p in sorted(live.rglob("*"))
        if p.is_file() and "/timing/" not in p.as_posix()
    }
    summary = json.loads(files.pop("metrics.json"))
    assert summary.pop("timing").keys() == {"epoch_s", "images_per_s", "loader_seconds_fraction"}
    files["metrics.json"] = json.dumps(summary, sort_keys=True).encode()
    return files


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_packed(tmp_path_factory.mktemp("packed"), {"train": 96, "val": 30, "test": 30})


BACKBONES = [
    "emotion_cnn_s",
    "resnet50",
    "convnext_base",
    "tf_efficientnet_b3_ns",
    "vit_base_patch16_224",
]


@pytest.mark.parametrize("name", BACKBONES)
def test_every_listed_backbone_builds_and_trains_a_step(name: str) -> None:
    size = 32
    model = build_model(model_params(name, image_size=size, head_hidden=16), 6)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(2, 1, size, size)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 5]))
    loss.backward()
    opt.step()
    assert model(x).shape == (2, 6)
    assert all(p.grad is not None for p in model.head.parameters())


def test_pretrained_file_is_loaded_through_timm_and_adapted_to_grayscale(tmp_path: Path) -> None:
    source = timm.create_model("resnet18", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    weights = {"pretrained": True, "pretrained_file": str(tmp_path / "resnet18.pth")}
    rgb = create_backbone(model_params("resnet18", in_chans=3, **weights))
    gray = create_backbone(model_params("resnet18", **weights))
    fresh = create_backbone(model_params("resnet18"))
    assert torch.equal(rgb.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert torch.allclose(gray.conv1.weight, source.conv1.weight.sum(1, keepdim=True))
    assert not torch.equal(fresh.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    # a grayscale input through the adapted conv equals three equal channels through the original
    x = torch.rand(1, 1, 32, 32)
    assert torch.allclose(gray.conv1(x), source.conv1(x.expand(-1, 3, -1, -1)), atol=1e-5)


def test_freezing_trains_only_the_head_then_everything_with_discriminative_lrs(
    packed: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(
        epochs=3, freeze_backbone_epochs=1, backbone_lr=1e-3, head_lr=1e-2, warmup_epochs=0
    )
    trainer = make_trainer(packed, tmp_path, cfg)
    names = [g["name"] for g in trainer.optimizer.param_groups]
    assert names == ["backbone", "backbone_no_decay", "head", "head_no_decay"]
    snapshot = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    def changed(prefix: str) -> bool:
        now = trainer.model.state_dict()
        return any(not torch.equal(now[k], snapshot[k]) for k in now if k.startswith(prefix))

    trainer.train_epoch(0, lambda n: None)
    assert changed("head.")
    assert not changed("backbone.")  # weights and BN statistics untouched while frozen
    assert all(not p.requires_grad for p in trainer.model.backbone.parameters())
    trainer.train_epoch(1, lambda n: None)
    assert changed("backbone.")
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs["head"] / lrs["backbone"] == pytest.approx(10.0)
    decay = {g["name"]: g["weight_decay"] for g in trainer.optimizer.param_groups}
    assert decay == {"backbone": 1e-4, "backbone_no_decay": 0.0, "head": 1e-4, "head_no_decay": 0.0}


def test_sgd_is_nesterov_over_the_same_groups_and_learns(packed: Path, tmp_path: Path) -> None:
    cfg = tiny_config(optimizer="sgd", momentum=0.8, backbone_lr=0.05, head_lr=0.05, epochs=4)
    trainer = make_trainer(packed, tmp_path, cfg)
    assert type(trainer.optimizer) is torch.optim.SGD
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert {(g["nesterov"], g["momentum"]) for g in groups.values()} == {(True, 0.8)}
    assert groups["backbone"]["weight_decay"] == 1e-4
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0
    assert trainer.fit().best["val_accuracy"] > 0.9


def test_sam_ascent_moves_rho_along_the_gradient_and_restores_bit_for_bit() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    net[0].bias.requires_grad_(False)  # a frozen parameter has no gradient: never moved
    before = [p.detach().clone() for p in net.parameters()]
    (net(torch.randn(5, 4)) ** 2).sum().mul(8.0).backward()  # a loss scaled by 8, as fp16 AMP does
    grads = [p.grad / 8.0 for p in net.parameters() if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    ascent = SharpnessAwareAscent(list(net.parameters()), rho=0.05)
    assert ascent.ascend()
    moved = [p.detach() - b for p, b in zip(net.parameters(), before, strict=True)]
    assert torch.equal(moved[1], torch.zeros_like(moved[1]))
    expected = [0.05 * g / norm for g in grads]
    for got, want in zip([moved[0], *moved[2:]], expected, strict=True):
        torch.testing.assert_close(got, want)
    ascent.restore()
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))
    net[1].weight.grad.fill_(float("inf"))  # an fp16 overflow step: no ascent, weights untouched
    assert not ascent.ascend()
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))
    with pytest.raises(ValueError, match="rho > 0"):
        SharpnessAwareAscent(list(net.parameters()), rho=0.0)


def test_frozen_norm_statistics_keeps_running_stats_and_counters() -> None:
    bn = torch.nn.BatchNorm2d(3).train()
    bn(torch.randn(4, 3, 5, 5))
    stats = [t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    with frozen_norm_statistics(bn):
        bn(torch.randn(4, 3, 5, 5) * 3 + 1)
    after = (bn.running_mean, bn.running_var, bn.num_batches_tracked)
    assert all(torch.equal(a, b) for a, b in zip(after, stats, strict=True))
    assert bn.momentum == 0.1
    bn(torch.randn(4, 3, 5, 5) * 3 + 1)
    assert not torch.equal(bn.running_mean, stats[0])


def test_sam_steps_take_two_passes_count_batch_norm_once_and_learn(
    packed: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(sam_rho=0.05, epochs=4)
    trainer = make_trainer(packed, tmp_path / "sam", cfg)
    forwards = []
    trainer.model.register_forward_hook(lambda *_: forwards.append(1))
    first_bn = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    trainer.train_epoch(0, lambda n: None)
    assert len(forwards) == 2 * trainer.steps
    assert int(first_bn.num_batches_tracked) == trainer.steps
    plain = make_trainer(packed, tmp_path / "plain", tiny_config(epochs=4))
    plain.train_epoch(0, lambda n: None)
    assert not torch.equal(plain.model.head[-1].weight, trainer.model.head[-1].weight)
    assert make_trainer(packed, tmp_path / "fit", cfg).fit().best["val_accuracy"] > 0.9


def test_param_groups_cover_every_parameter_once() -> None:
    model = build_model(model_params(), 6)
    groups = param_groups(model, 1e-4, 1e-3, 0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    set_backbone_trainable(model, False)
    assert {p.requires_grad for p in model.head.parameters()} == {True}


def test_training_learns_and_writes_checkpoints(packed: Path, tmp_path: Path) -> None:
    result = make_trainer(packed, tmp_path, tiny_config(epochs=4)).fit()
    assert result.best["val_accuracy"] > 0.9
    best = checkpoint.load(tmp_path / "best_model.pth")
    assert best["classes"] == CLASSES
    assert best["preprocessing"]["image_size"] == 24
    assert len(best["history"]) == best["epoch"]
    assert (tmp_path / "best_model.pth").read_bytes() == (tmp_path / "state/best.pth").read_bytes()
    last = checkpoint.load(tmp_path / "state/last.pth")
    assert {"optimizer", "scheduler", "ema", "scaler", "rng", "timing"} <= set(last)


class SimulatedKillError(Exception):
    pass


def test_resume_after_a_kill_gives_the_same_result(packed: Path, outside_repo: Path) -> None:
    """Same weights, history and live log (rebuilt from the resume state), timings aside."""
    tmp_path = outside_repo
    cfg = tiny_config(epochs=4)
    uninterrupted = make_trainer(packed, tmp_path / "a", cfg, live=True).fit()

    def kill_after_two(epoch: int) -> None:
        if epoch == 2:
            raise SimulatedKillError

    with pytest.raises(SimulatedKillError):
        make_trainer(packed, tmp_path / "b", cfg, live=True).fit(on_epoch_end=kill_after_two)
    assert checkpoint.load(tmp_path / "b/state/last.pth")["epoch"] == 2
    shutil.rmtree(tmp_path / "b/live")  # DVC deletes the stage's outputs before rerunning it
    resumed_trainer = make_trainer(packed, tmp_path / "b", cfg, live=True)
    resumed = resumed_trainer.fit()
    assert resumed.resumed_from == 2
    assert resumed.history == uninterrupted.history
    assert resumed.best == uninterrupted.best
    assert [t["epoch"] for t in resumed.timing] == [1, 2, 3, 4]
    assert (tmp_path / "a/best_model.pth").read_bytes() == (
        tmp_path / "b/best_model.pth"
    ).read_bytes()
    logged = live_files(tmp_path / "b/live")
    assert logged == live_files(tmp_path / "a/live")
    assert logged["plots/metrics/val/accuracy.tsv"].decode().splitlines()[1:] == [
        f"{row['epoch']}\t{row['val/accuracy']}" for row in uninterrupted.history
    ]
    timing = (tmp_path / "b/live/plots/metrics/timing/epoch_s.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in timing[1:]] == ["1", "2", "3", "4"]


CNN_BLOCKS = [
    "backbone_stages_0",
    "backbone_stages_1",
    "backbone_stages_2",
    "backbone_stages_3",
    "head_0",
    "head_2",
    "head_4",
]
GROUPS = ["backbone", "backbone_no_decay", "head", "head_no_decay"]


def test_blocks_are_named_layers_of_the_backbone_and_head() -> None:
    assert list(model_blocks(build_model(model_params(), 6))) == CNN_BLOCKS
    resnet = list(model_blocks(build_model(model_params("resnet18"), 6)))
    assert resnet == ["backbone_conv1", "backbone_bn1"] + [
        f"backbone_layer{i}" for i in range(1, 5)
    ] + ["head_0", "head_2", "head_4"]
    vit = model_blocks(build_model(model_params("vit_tiny_patch16_224", image_size=32), 6))
    assert "backbone_other" in vit  # cls token and position embedding
    assert 5 <= len(vit) <= 15


def test_diagnostics_are_logged_per_epoch_with_finite_values(
    packed: Path, outside_repo: Path
) -> None:
    """LR per param group, weight and gradient norm per block, the gap, weight histograms; the
    diagnostics are plots only, the metrics hold quality and (apart) timing."""
    trainer = make_trainer(packed, outside_repo, tiny_config(epochs=2), live=True)
    result = trainer.fit()
    live = outside_repo / "live"
    series = {f"lr/{g}" for g in GROUPS}
    series |= {f"{kind}/{b}" for kind in ("weight_norm", "grad_norm") for b in CNN_BLOCKS}
    series |= {"weight_norm/total", "grad_norm/total", "gap/accuracy", "gap/loss"}
    for row in result.history:
        assert series <= set(row)
        values = [v for k, v in row.items() if k not in ("epoch", "phase")]
        assert all(math.isfinite(v) for v in values)
        assert all(row[f"grad_norm/{b}"] > 0 for b in CNN_BLOCKS)
        gap = row["train/accuracy"] - row["val/accuracy"]
        assert row["gap/accuracy"] == pytest.approx(gap, abs=2e-6)
    for name in series:
        tsv = (live / "plots/metrics" / f"{name}.tsv").read_text().splitlines()
        assert tsv[0] == f"step\t{name.split('/')[1]}"
        assert [line.split("\t")[0] for line in tsv[1:]] == ["1", "2"]
    summary = json.loads((live / "metrics.json").read_text())
    assert set(summary) == {"step", "train", "val", "val_ema", "gap", "timing"}
    assert summary["step"] == 2
    assert summary["val"]["accuracy"] == result.history[-1]["val/accuracy"]
    sizes = {b: sum(p.numel() for p in ps if p.ndim > 1) for b, ps in trainer.blocks.items()}
    sizes["head_2"] = sum(p.numel() for p in trainer.blocks["head_2"])  # LayerNorm: all of it
    for hist in result.histograms:
        assert {b: sum(h["counts"]) for b, h in hist.items()} == sizes
    images = sorted((live / "plots/images").iterdir())
    assert [p.name for p in images] == ["weight_distribution.png"]  # one figure, all epochs
    assert images[0].read_bytes().startswith(b"\x89PNG")


def test_weight_figure_shows_every_block_over_the_epochs_without_touching_rng() -> None:
    """One heatmap panel per block (x: epoch, y: weight value), one shared colour bar; drawing
    it leaves torch's random state alone, so training is unchanged by it."""
    blocks = model_blocks(build_model(model_params(), 6))
    epochs = [weight_histograms(blocks)]
    with torch.no_grad():
        for params in blocks.values():
            for p in params:
                p.mul_(1.5)  # a later epoch: wider distributions
    epochs.append(weight_histograms(blocks))
    torch_state = torch.get_rng_state()
    fig = weight_distribution_figure(epochs)
    assert torch.equal(torch.get_rng_state(), torch_state)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(" (")[0] for ax in panels] == CNN_BLOCKS
    assert all(len(ax.collections) == 1 for ax in panels)  # one mesh: every epoch in one panel
    assert {ax.get_xlabel() for ax in panels} == {"", "epoch"}
    assert {ax.get_ylabel() for ax in panels} == {"", "weight value"}
    assert panels[0].get_xlim() == (0.5, 2.5)
    limit = epochs[1]["backbone_stages_0"]["limit"]  # the wider epoch sets the range
    assert panels[0].get_ylim() == pytest.approx((-limit, limit))
    bars = [ax for ax in fig.axes if ax.get_ylabel().startswith("share")]
    assert len(bars) == 1


def test_gradient_norms_average_the_finite_steps() -> None:
    weight = torch.nn.Parameter(torch.zeros(2, 2))
    norms = GradNorms({"layer": [weight]})
    for value in (3.0, float("inf"), 5.0):
        weight.grad = torch.full((2, 2), value)
        norms.add()
    assert norms.mean() == {"layer": pytest.approx((6.0 + 10.0) / 2)}
    norms.reset()
    assert norms.mean() == {"layer": 0.0}


def test_a_frozen_backbone_has_no_gradient_norm(packed: Path, tmp_path: Path) -> None:
    cfg = tiny_config(epochs=2, freeze_backbone_epochs=1, ema_decay=0.0)
    history = make_trainer(packed, tmp_path, cfg).fit().history
    assert [r["phase"] for r in history] == ["frozen", "full"]
    backbone = [b for b in CNN_BLOCKS if b.startswith("backbone")]
    assert all(history[0][f"grad_norm/{b}"] == 0.0 for b in backbone)
    assert all(history[1][f"grad_norm/{b}"] > 0.0 for b in backbone)
    assert all(r["val_ema/accuracy"] == r["val/accuracy"] for r in history)  # no EMA: raw


def test_a_run_killed_after_its_last_epoch_still_writes_its_output(
    packed: Path, tmp_path: Path
) -> None:
    """DVC deletes best_model.pth before the stage runs: resuming a complete state re-creates it."""
    cfg = tiny_config(epochs=2)
    make_trainer(packed, tmp_path, cfg).fit()
    published = (tmp_path / "best_model.pth").read_bytes()
    (tmp_path / "best_model.pth").unlink()
    result = make_trainer(packed, tmp_path, cfg).fit()
    assert result.resumed_from == 2
    assert (tmp_path / "best_model.pth").read_bytes() == published


def test_a_checkpoint_from_another_run_is_not_resumed(packed: Path, tmp_path: Path) -> None:
    make_trainer(packed, tmp_path, tiny_config(epochs=1)).fit()
    other = make_trainer(packed, tmp_path, tiny_config(epochs=2))
    other.saver.run_id = "run-b"
    assert other.try_resume() == 0


def test_a_resume_with_another_number_of_processes_is_refused(packed: Path, tmp_path: Path) -> None:
    """The effective batch is batch_size x processes: a run never continues with another."""
    cfg = tiny_config(epochs=2)
    make_trainer(packed, tmp_path, cfg).fit()
    state = checkpoint.load(tmp_path / "state/last.pth")
    assert state["world_size"] == 1
    state["world_size"] = 2
    checkpoint.save(state, tmp_path / "state/last.pth")
    with pytest.raises(EmotionError, match="written by 2 training process"):
        make_trainer(packed, tmp_path, cfg).try_resume()


DDP_PARAMS = {
    "model.image_size": 24,
    "train.epochs": 2,
    "train.batch_size": 8,
    "train.processes": 2,
    "model.head_hidden": 16,
}


def ddp_train(packed: Path, cwd: Path, launches: list[list[str]]) -> dict[str, Any]:
    """Run stages/train.py under each ``torchrun`` argument list at once (the nodes of one job);
    returns the best checkpoint, after checking every launch succeeded."""
    cwd.mkdir(parents=True)
    (cwd / "params.yaml").write_text(params_text(DDP_PARAMS))
    script = [str(REPO / "stages/train.py"), "--data", str(packed), "--models", "models"]
    script += ["--report", "train.json", "--metrics", "headline.json", "--live", "live"]
    script += ["--env", "env/train.json"]
    procs = []
    for launch in launches:
        procs.append(
            subprocess.Popen(
                ["torchrun", *launch, *script],
                cwd=cwd,
                env=tool_env(EMOTION_WORKERS="2"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        time.sleep(1)  # node 0 first: it hosts the rendezvous
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    return checkpoint.load(cwd / "models" / "best_model.pth")


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(packed: Path, tmp_path: Path) -> None:
    best = ddp_train(packed, tmp_path / "run", [["--standalone", "--nproc_per_node", "2"]])
    report = json.loads((tmp_path / "run/train.json").read_text())
    assert report["epochs_run"] == 2
    assert json.loads((tmp_path / "run/live/metrics.json").read_text())["step"] == 2  # rank 0
    assert json.loads((tmp_path / "run/env/train.json").read_text())["torch_threads"] == 1
    assert best["config"]["world_size"] == 2


@pytest.mark.slow
def test_two_nodes_on_loopback_train_the_weights_of_one_node_with_two_processes(
    packed: Path, tmp_path: Path
) -> None:
    """torchrun's c10d rendezvous over TCP, one process per "node": the same job (world size 2,
    same global batch) as one node with two processes, so the same weights, bit for bit."""
    one = ddp_train(packed, tmp_path / "one", [["--standalone", "--nproc_per_node", "2"]])
    port = free_port()
    nodes = [
        [
            "--nnodes=2",
            f"--node-rank={rank}",
            "--nproc-per-node=1",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{port}",
            "--rdzv-id=emotion-two-nodes",
        ]
        for rank in (0, 1)
    ]
    two = ddp_train(packed, tmp_path / "two", nodes)
    assert two["config"]["world_size"] == 2
    assert one["state_dict"].keys() == two["state_dict"].keys()
    for name, tensor in one["state_dict"].items():
        assert torch.equal(tensor, two["state_dict"][name]), name


def test_a_launcher_that_disagrees_with_train_processes_is_refused(
    packed: Path, tmp_path: Path
) -> None:
    (tmp_path / "params.yaml").write_text(params_text({**DDP_PARAMS, "train.processes": 3}))
    cmd = ["python", str(REPO / "stages/train.py"), "--data", str(packed), "--models", "m"]
    cmd += ["--report", "r.json", "--metrics", "m.json", "--live", "live", "--env", "env.json"]
    done = subprocess.run(cmd, cwd=tmp_path, env=tool_env(), capture_output=True, text=True)
    assert done.returncode == 2
    assert "train.processes is 3 but train.launcher ('python') started 1" in done.stderr
    assert not (tmp_path / "m").exists()


def test_shards_are_disjoint_and_equal_sized() -> None:
    gen = torch.Generator().manual_seed(0)
    shards = [
        torch.cat(
            list(
                epoch_batches(
                    10,
                    2,
                    torch.Generator().manual_seed(0),
                    shuffle=True,
                    drop_last=False,
                    rank=r,
                    world=3,
                )
            )
        )
        for r in range(3)
    ]
    assert {len(s) for s in shards} == {4}
    assert set(torch.cat(shards).tolist()) == set(range(10))
    assert len(list(epoch_batches(10, 4, gen, shuffle=False, drop_last=True))) == 2


def test_batch_augment_is_seeded_and_keeps_range() -> None:
    x = torch.rand(8, 1, 24, 24)
    aug = BatchAugment(section("train"))
    a = aug(x.clone(), torch.Generator().manual_seed(1))
    b = aug(x.clone(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.min() >= 0
    assert a.max() <= 1
    assert not torch.equal(a, x)
    pre = Preprocess(PreprocessingContract(24, 48, 3, (0.5,) * 3, (0.25,) * 3, None))
    assert pre.finish(a).shape == (8, 3, 48, 48)


def test_class_weights_are_inverse_frequency() -> None:
    w = inverse_frequency_weights(torch.tensor([10, 30, 0, 60]))
    assert w[2] == 0
    assert w[0] / w[1] == pytest.approx(3.0)
    assert w[[0, 1, 3]].mean() == pytest.approx(1.0)


def test_metrics_on_known_predictions() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    m = classification_metrics(y, probs, ["a", "b", "c"], bins=5)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    ece, table = expected_calibration_error(y, probs, bins=5)
    assert ece == pytest.approx(abs(4 / 6 - (0.8 + 0.2 / 3)))
    assert sum(row["count"] for row in table) == 6


def test_cuda_runs_ask_for_deterministic_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `setup` sets on a CUDA device so a resumed run can match an uninterrupted one."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        deterministic_cuda()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
