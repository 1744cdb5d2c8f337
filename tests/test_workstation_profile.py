"""The `workstation` profile (the original report's GPU setup) end to end, size-only overrides.

Everything the profile sets is used as is (resnet50 with pretrained weights through timm, RGB
input, freeze phase, discriminative LRs, MixUp 0.4, EMA, Stable Diffusion settings, predefined
FER2013 splits with a carved test split, torchrun launchers) except what makes it fit a CPU test:
a tiny FER2013-style folder, a local weights file instead of the hub, 64 px instead of 224, four
epochs, the tiny diffusion pipeline, small explain/export budgets, and one process per launcher.
The real run needs a CUDA GPU and network access (README).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import timm
import torch
import yaml
from PIL import Image

from .conftest import copy_repo, run, stale_stages

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FER_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def fer_folder(root: Path) -> Path:
    """FER2013 as shipped in ../shared: train/ and validation/ class folders of 48 px JPEGs."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("validation", 4)):
        for label in FER_LABELS:
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                Image.fromarray(pixels, "L").save(folder / f"{i:03d}.jpg", quality=95)
    return root


def test_workstation_profile_runs_end_to_end(tmp_path: Path) -> None:
    weights = tmp_path / "resnet50_weights.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), weights)
    overrides = [
        f"ingest.source={fer_folder(tmp_path / 'fer2013')}",
        f"model.pretrained_file={weights}",
        "model.image_size=64",
        "train.epochs=4",  # > freeze_backbone_epochs (3): both phases run
        "train.batch_size=8",
        "train.launcher=torchrun --standalone --nproc_per_node=1",
        "synth.launcher=torchrun --standalone --nproc_per_node=1",
        "synth.model_id=tiny",
        "synth.target_total=150",
        "synth.image_size=64",
        "synth.steps=2",
        "explain.per_class=1",
        "explain.shap_background=4",
        "explain.shap_nsamples=8",
        "explain.lime_samples=20",
        "export.latency_runs=10",
        "export.calibration_images=8",
        "export.throughput_batch=4",
    ]
    project = copy_repo(tmp_path / "project", "workstation", overrides)
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["model"]["name"] == "resnet50"
    assert params["model"]["pretrained"] is True
    assert params["train"]["mixup_alpha"] == 0.4

    run(["dvc", "repro"], project)
    assert stale_stages(project) == set()
    balance = json.loads((project / "reports/balance.json").read_text())
    assert json.dumps(balance).count("disgust") == 0  # dropped by the profile's ingest settings
    train = json.loads((project / "reports/train.json").read_text())
    assert train["epochs_run"] == 4
    synth = json.loads((project / "reports/synth.json").read_text())
    assert synth["model_id"] == "tiny"
    assert synth["generated"] > 0
    contract = json.loads((project / "models/model.json").read_text())
    assert contract["input"]["shape"] == ["batch", 3, 64, 64]
    assert contract["source"]["model_name"] == "resnet50"
    graph = onnx.load(project / "models/model.onnx", load_external_data=False).graph
    assert graph.input[0].name == "input"
    export = json.loads((project / "reports/export.json").read_text())
    assert export["parity"]["top1_agreement"] == 1.0
    assert export["opset"] == 17
    explain = json.loads((project / "reports/explain.json").read_text())
    assert explain["target_layer"].endswith("layer3")
