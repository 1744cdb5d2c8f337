"""benchmarks/gpu_check.py: the CPU smoke run, the no-CUDA exit, its DDP worker, the real check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import REPO, tool_env

pytestmark = pytest.mark.slow  # each check starts a subprocess that imports the whole stack
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
SECTIONS = ["train", "datapath", "ddp", "diffusion", "onnx"]


def run(*args: str, cuda_visible: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = tool_env(OMP_NUM_THREADS="1")
    if not cuda_visible:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_cpu_smoke_runs_every_cpu_section(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = run(str(SCRIPT), "--device", "cpu", "--smoke", "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    sections = report["sections"]
    assert list(sections) == SECTIONS
    assert report["failed"] == []
    for name in ["train", "datapath", "diffusion", "onnx"]:
        assert sections[name]["status"] == "ok", sections[name]
        assert sections[name]["images_per_s"] > 0
        assert sections[name]["peak_mem_mib"] is None  # CUDA-only measurement
    assert sections["train"]["extra"]["amp"] == "bfloat16"
    assert sections["train"]["extra"]["grad_scaler"] is False  # only fp16 needs loss scaling
    assert sections["diffusion"]["extra"]["dtype"] == "float32"  # fp16 is for CUDA only
    onnx = sections["onnx"]["extra"]
    assert onnx["providers"] == ["CPUExecutionProvider"]
    assert onnx["parity"]["max_abs_logit_diff"] <= onnx["parity"]["atol"]
    assert sections["ddp"]["status"] == "skipped"
    assert sections["ddp"]["detail"].startswith("needs 2 CUDA GPUs")
    table = done.stdout.splitlines()
    assert table[0].startswith("| section | status | images/s | peak MiB |")
    assert [row.split("|")[1].strip() for row in table[2:]] == SECTIONS


def test_a_failing_section_is_reported_and_fails_the_run(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    args = ["--device", "cpu", "--smoke", "--model", "no_such_model", "--out", str(out)]
    done = run(str(SCRIPT), *args, timeout=300)
    assert done.returncode == 1
    report = json.loads(out.read_text())
    assert report["failed"] == ["train", "onnx"]
    assert "not a timm model" in report["sections"]["train"]["detail"]
    assert report["sections"]["datapath"]["status"] == "ok"  # the others still ran
    assert report["sections"]["diffusion"]["status"] == "ok"
    assert "| train | FAIL |" in done.stdout
    assert "Traceback" in done.stderr


def test_cuda_requested_without_cuda_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = run(str(SCRIPT), "--smoke", "--out", str(out), cuda_visible=False, timeout=120)
    assert done.returncode == 2
    assert "CUDA is not available" in done.stderr
    assert "--device cpu" in done.stderr
    assert not out.exists()


def test_ddp_worker_on_two_gloo_processes(tmp_path: Path) -> None:
    """The worker the ddp section launches, on CPU: replicas must stay identical."""
    out = tmp_path / "ddp.json"
    launch = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    worker = [str(SCRIPT), "--ddp-worker", "--device", "cpu", "--smoke", "--out", str(out)]
    done = run(*launch, *worker, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["world"] == 2
    assert report["backend"] == "gloo"
    assert report["max_param_drift"] == 0.0
    assert report["images_per_s"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_default_check_on_cuda(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = run(str(SCRIPT), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    sections = json.loads(out.read_text())["sections"]
    for name in ["train", "datapath", "diffusion", "onnx"]:
        assert sections[name]["status"] == "ok", sections[name]
        assert sections[name]["images_per_s"] > 0
    assert sections["train"]["peak_mem_mib"] > 0
    assert sections["diffusion"]["extra"]["dtype"] == "float16"
    expected_ddp = "ok" if torch.cuda.device_count() >= 2 else "skipped"
    assert sections["ddp"]["status"] == expected_ddp
