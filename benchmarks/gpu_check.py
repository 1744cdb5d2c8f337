"""End-to-end GPU check: AMP training, the fast data path, DDP, tiny diffusion and ONNX, timed.

Usage: python benchmarks/gpu_check.py [--out gpu_check.json] [--device cuda|cpu] [--steps N]
       [--batch N] [--image-size N] [--model resnet50] [--smoke]

Sections (each isolated: a failure is reported as FAIL with its error, and the exit code is 1):
1. train     the trainer's own optimiser step (``emotion.training.epoch.train_step``) with the
             committed ``train`` recipe (optimiser, SAM, clipping, schedule, EMA, class-weighted
             soft targets), AMP ``auto`` (bf16 where supported, else fp16 + GradScaler) and
             channels_last, on the trainer's model (timm backbone + the original report's
             head), on one batch from the trainer's data path.
2. datapath  the trainer's data path (``TrainBatches``): uint8 48x48 batches -> BatchAugment +
             Preprocess (resize, 3 channels) + MixUp on the device.
3. ddp       2-rank DDP launched with torchrun on this script (``--ddp-worker``): the train
             section's step on the trainer's DDP wrapper; NCCL on GPUs.
4. diffusion the tiny Stable Diffusion pipeline at 64 px, dtype by ``resolve_dtype("auto")``:
             fp16 on CUDA, fp32 on CPU (CPU fp16 kernels are slow and partly missing).
5. onnx      export_onnx + onnxruntime (CUDA provider when the installed build has it) and
             parity against PyTorch fp32 on the same inputs.
Prints a markdown table (images/s, peak CUDA memory per section) and writes ``--out`` as JSON.
Exit codes: 0 all ran, 1 a section failed, 2 ``--device cuda`` without a usable GPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from emotion.core import distributed
from emotion.tools.params_file import load_section
from emotion.training.epoch import (
    TrainBatches,
    create_learner,
    distributed_model,
    inverse_frequency_weights,
    train_step,
)
from emotion.training.model import EmotionNet, build_model
from emotion.training.optim import autocast_dtype
from emotion.training.params import TrainParams
from emotion.training.tensordata import Preprocess, TensorSplit
from emotion.training.trainer import preprocessing_contract, training_model
from emotion.vision.preprocessing import PreprocessingContract

NUM_CLASSES = 6
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"  # the committed defaults
DATA_SIZE = 48  # FER-sized uint8 source images
DDP_WORLD = 2
MIB = 2**20
#: Sections whose device memory is all PyTorch's (ddp reports its rank 0; ORT has its own arena).
TORCH_MEMORY = {"train", "datapath", "diffusion"}


@dataclass(frozen=True)
class CheckConfig:
    """Sizes for one run; ``--smoke`` shrinks everything to seconds on a CPU."""

    device: torch.device
    model: str = "resnet50"
    image_size: int = 224
    batch: int = 128
    steps: int = 20
    warmup: int = 5
    diffusion_batch: int = 16
    diffusion_steps: int = 10
    diffusion_size: int = 64
    onnx_batch: int = 32


SMOKE = {
    "model": "emotion_cnn_s",
    "image_size": 32,
    "batch": 4,
    "steps": 2,
    "warmup": 1,
    "diffusion_batch": 2,
    "diffusion_steps": 2,
    "onnx_batch": 4,
}


@dataclass
class Result:
    """One section's outcome; ``status`` is ok, skipped or FAIL."""

    status: str
    images_per_s: float | None = None
    peak_mem_mib: float | None = None
    seconds: float = 0.0
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    step: Callable[[], Any], warmup: int, steps: int, device: torch.device
) -> tuple[float, Any]:
    """Seconds for ``steps`` calls of ``step`` after ``warmup`` untimed ones; the last output."""
    out = None
    for _ in range(warmup):
        out = step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        out = step()
    sync(device)
    return time.perf_counter() - start, out


def model_params(cfg: CheckConfig) -> Any:
    """The committed ``model`` section with the checked backbone, RGB input and size."""
    fields = {"name": cfg.model, "in_chans": 3, "image_size": cfg.image_size}
    return load_section("model", PARAMS, **fields, pretrained=False)


def train_params() -> TrainParams:
    """The committed ``train`` section (the product's recipe), AMP ``auto``, channels_last."""
    return load_section("train", PARAMS, amp="auto", channels_last=True)


def synthetic_split(n: int) -> TensorSplit:
    """``n`` random FER-sized uint8 images with random labels, packed like the balance stage's."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, DATA_SIZE, DATA_SIZE), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
    return TensorSplit(images, labels, pd.DataFrame({"label": labels.tolist()}))


def make_model(cfg: CheckConfig, device: torch.device) -> EmotionNet:
    """The trainer's model (timm backbone + the original report's head), 3 channels."""
    torch.manual_seed(0)
    return training_model(model_params(cfg), train_params(), NUM_CLASSES, device)


def train_steps(
    net: torch.nn.Module, model: EmotionNet, cfg: CheckConfig, device: torch.device
) -> tuple[float, dict[str, Any]]:
    """Time the trainer's step (:func:`train_step`) of ``net`` (``model``, possibly
    DDP-wrapped) on one batch from the trainer's data path."""
    params = train_params()
    split = synthetic_split(cfg.batch)
    pre = Preprocess(preprocessing_contract(model, model_params(cfg), split))
    batches = TrainBatches.create(split, pre, params, NUM_CLASSES, device)
    x, _, soft = batches(torch.arange(cfg.batch), torch.Generator().manual_seed(0))
    amp = autocast_dtype(params.amp, device)
    counts = split.class_counts(NUM_CLASSES)
    weights = inverse_frequency_weights(counts).to(device) if params.class_weights else None
    learner = create_learner(model, params, cfg.warmup + cfg.steps, amp, device, weights)
    net.train()

    def step() -> torch.Tensor:
        return train_step(learner, net, x, soft)[1].detach()

    seconds, loss = timed(step, cfg.warmup, cfg.steps, device)
    if not torch.isfinite(loss):
        raise RuntimeError(f"non-finite training loss {float(loss)}")
    amp_name = str(amp).removeprefix("torch.") if amp is not None else "off"
    scaler = learner.opt.scaler.is_enabled()
    return seconds, {"amp": amp_name, "grad_scaler": scaler, "loss": float(loss)}


def check_train(cfg: CheckConfig) -> Result:
    model = make_model(cfg, cfg.device)
    seconds, info = train_steps(model, model, cfg, cfg.device)
    scaler = " + GradScaler" if info["grad_scaler"] else ""
    return Result(
        "ok",
        cfg.batch * cfg.steps / seconds,
        detail=f"{cfg.model} {cfg.image_size}px b{cfg.batch} {info['amp']}{scaler} channels_last",
        extra=info,
    )


def check_datapath(cfg: CheckConfig) -> Result:
    gen = torch.Generator().manual_seed(0)  # a CPU generator, as in the trainer
    split = synthetic_split(cfg.batch * 4)
    mean, std = tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD)
    pre = Preprocess(PreprocessingContract(DATA_SIZE, cfg.image_size, 3, mean, std, None))
    batches = TrainBatches.create(split, pre, train_params(), NUM_CLASSES, cfg.device)

    def step() -> torch.Tensor:
        idx = torch.randint(0, len(split), (cfg.batch,), generator=gen)
        return batches(idx, gen)[0]

    seconds, x = timed(step, cfg.warmup, cfg.steps, cfg.device)
    expected = (cfg.batch, 3, cfg.image_size, cfg.image_size)
    if tuple(x.shape) != expected or not torch.isfinite(x).all():
        raise RuntimeError(f"data path produced {tuple(x.shape)} (expected {expected}) or NaNs")
    return Result(
        "ok",
        cfg.batch * cfg.steps / seconds,
        detail=f"uint8 1x{DATA_SIZE}x{DATA_SIZE} -> float 3x{cfg.image_size}x{cfg.image_size}"
        f" b{cfg.batch}",
    )


def check_ddp(cfg: CheckConfig) -> Result:
    if cfg.device.type != "cuda":
        return Result("skipped", detail=f"needs {DDP_WORLD} CUDA GPUs (running on {cfg.device})")
    if (gpus := torch.cuda.device_count()) < DDP_WORLD:
        return Result("skipped", detail=f"needs {DDP_WORLD} CUDA GPUs (found {gpus})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={DDP_WORLD}", str(Path(__file__).resolve()), "--ddp-worker",
            "--device", "cuda", "--model", cfg.model, "--image-size", str(cfg.image_size),
            "--batch", str(cfg.batch), "--steps", str(cfg.steps), "--warmup", str(cfg.warmup),
            "--out", str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0 or not out.exists():
            sys.stderr.write(proc.stdout + proc.stderr)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"torchrun exited {proc.returncode}: {tail[0][:300]}")
        report = json.loads(out.read_text())
    return Result(
        "ok",
        report.pop("images_per_s"),
        peak_mem_mib=report.pop("peak_mem_mib"),
        detail=f"{report['world']} ranks {report['backend']}, b{cfg.batch}/rank, {report['amp']}",
        extra=report,
    )


def ddp_worker(cfg: CheckConfig, out: Path) -> None:
    """Run under torchrun: timed DDP steps, then check the replicas stayed identical."""
    ctx = distributed.setup(prefer_cuda=cfg.device.type == "cuda")
    try:
        model = make_model(cfg, ctx.device)
        net = distributed_model(model, ctx.world, frozen=False)
        seconds, info = train_steps(net, model, cfg, ctx.device)
        sums = torch.stack([p.detach().float().sum() for p in model.parameters()])
        hi, lo = sums.clone(), sums.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        drift = float(((hi - lo).abs() / hi.abs().clamp(min=1.0)).max())
        if drift > 1e-6:
            raise RuntimeError(f"DDP replicas diverged (max relative parameter-sum gap {drift})")
        if ctx.is_main:
            cuda = ctx.device.type == "cuda"
            report = {
                "images_per_s": ctx.world * cfg.batch * cfg.steps / seconds,
                "peak_mem_mib": torch.cuda.max_memory_allocated(ctx.device) / MIB if cuda else None,
                "world": ctx.world,
                "backend": dist.get_backend(),
                "max_param_drift": drift,
                **info,
            }
            out.write_text(json.dumps(report))
    finally:
        distributed.teardown(ctx)


def check_diffusion(cfg: CheckConfig) -> Result:
    # Imported here, like onnxruntime below: a broken install fails its section, not the check,
    # and the DDP workers skip the import.
    from emotion.synthesize.pipeline import TINY, generate, load_pipeline, resolve_dtype
    from emotion.synthesize.prompts import Slot

    dtype = resolve_dtype("auto", cfg.device)
    pipe = load_pipeline(TINY, None, cfg.device, dtype)
    slots = [
        Slot("happy", i, i, "portrait photo person face smiling", "")
        for i in range(cfg.diffusion_batch)
    ]
    size = cfg.diffusion_size

    def step() -> list:
        return generate(
            pipe, slots, steps=cfg.diffusion_steps, guidance_scale=7.5, size=size, device=cfg.device
        )

    seconds, images = timed(step, 1, 1, cfg.device)
    if len(images) != len(slots) or any(im.size != (size, size) for im in images):
        raise RuntimeError(f"expected {len(slots)} images of {size}px, got {len(images)}")
    dtype_name = str(dtype).removeprefix("torch.")
    return Result(
        "ok",
        len(slots) / seconds,
        detail=f"tiny SD {size}px b{len(slots)} {cfg.diffusion_steps} steps {dtype_name}",
        extra={"dtype": dtype_name},
    )


def check_onnx(cfg: CheckConfig) -> Result:
    import onnxruntime as ort

    from emotion.export.onnx_export import (
        export_onnx,
        ort_logits,
        ort_session,
        parity,
        torch_logits,
    )

    torch.manual_seed(0)
    model = build_model(model_params(cfg), NUM_CLASSES).eval()
    shape = (3, cfg.image_size, cfg.image_size)
    x = np.random.default_rng(0).standard_normal((cfg.onnx_batch, *shape), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        start = time.perf_counter()
        export = export_onnx(model, path, shape)
        export_s = time.perf_counter() - start
        session = ort_session(path)
        seconds, logits = timed(lambda: ort_logits(session, x), 1, 1, torch.device("cpu"))
    providers = session.get_providers()
    on_cuda = "CUDAExecutionProvider" in providers
    proof = parity(torch_logits(model, x), logits)
    atol = 1e-2 if on_cuda else 1e-4  # CUDA kernels may use TF32; CPU must match fp32 closely
    if proof["max_abs_logit_diff"] > atol:
        raise RuntimeError(
            f"ONNX parity: max |logit diff| {proof['max_abs_logit_diff']:.3g} > {atol}"
        )
    ran_on = "+".join(p.removesuffix("ExecutionProvider") for p in providers)
    note = ""
    if cfg.device.type == "cuda" and not on_cuda:
        why = (
            "CUDA provider failed to load"
            if "CUDAExecutionProvider" in ort.get_available_providers()
            else "is a CPU build (install onnxruntime-gpu for CUDA)"
        )
        note = f"; onnxruntime {ort.__version__} {why}"
    return Result(
        "ok",
        cfg.onnx_batch / seconds,
        detail=f"opset {export.opset} on {ran_on}, max abs diff"
        f" {proof['max_abs_logit_diff']:.1e}{note}",
        extra={
            "opset": export.opset,
            "providers": providers,
            "available_providers": ort.get_available_providers(),
            "onnxruntime": ort.__version__,
            "export_s": export_s,
            "parity": {**proof, "atol": atol},
        },
    )


SECTIONS: dict[str, Callable[[CheckConfig], Result]] = {
    "train": check_train,
    "datapath": check_datapath,
    "ddp": check_ddp,
    "diffusion": check_diffusion,
    "onnx": check_onnx,
}


def run_section(name: str, cfg: CheckConfig) -> Result:
    """Run one section; errors become a FAIL result (traceback on stderr), memory is freed after."""
    fn, cuda = SECTIONS[name], cfg.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(cfg.device)
    start = time.perf_counter()
    try:
        result = fn(cfg)
    except Exception as exc:  # reported, and fails the run at the end
        traceback.print_exc()
        result = Result("FAIL", detail=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    result.seconds = time.perf_counter() - start
    if cuda and result.status == "ok" and name in TORCH_MEMORY:
        result.peak_mem_mib = torch.cuda.max_memory_allocated(cfg.device) / MIB
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def markdown(results: dict[str, Result]) -> str:
    def num(v: float | None) -> str:
        if v is None:
            return "—"
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

    rows = [
        "| section | status | images/s | peak MiB | seconds | detail |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, r in results.items():
        detail = r.detail.replace("|", r"\|")
        rows.append(
            f"| {name} | {r.status} | {num(r.images_per_s)} | {num(r.peak_mem_mib)} "
            f"| {r.seconds:.1f} | {detail} |"
        )
    return "\n".join(rows)


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    if device.type == "cuda":
        env |= {
            "gpu": torch.cuda.get_device_name(device),
            "gpus": torch.cuda.device_count(),
            "cudnn": torch.backends.cudnn.version(),
            "bf16": torch.cuda.is_bf16_supported(),
        }
    return env


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, CheckConfig]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--model", help="timm backbone (default resnet50; smoke emotion_cnn_s)")
    parser.add_argument("--image-size", type=int, help="training/ONNX input size (default 224)")
    parser.add_argument(
        "--batch", type=int, help="training and data-path batch, even (MixUp; default 128)"
    )
    parser.add_argument("--steps", type=int, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 5)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for a CPU run")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_worker and args.out is None:
        parser.error("--ddp-worker needs --out")
    if args.batch is not None and args.batch % 2:
        parser.error("--batch must be even: MixUp pairs the images of a batch, as in training")
    sizes = {
        **(SMOKE if args.smoke else {}),
        **{
            k: v
            for k, v in (
                ("model", args.model),
                ("image_size", args.image_size),
                ("batch", args.batch),
                ("steps", args.steps),
                ("warmup", args.warmup),
            )
            if v is not None
        },
    }
    return args, CheckConfig(torch.device(args.device), **sizes)


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    if cfg.device.type == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu_check: --device cuda, but CUDA is not available (torch {torch.__version__},"
            f" built for CUDA {torch.version.cuda}, CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). Run it on a GPU machine, or"
            " pass --device cpu (add --smoke for a quick run).",
            file=sys.stderr,
        )
        return 2
    if cfg.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if args.ddp_worker:
        ddp_worker(cfg, args.out)
        return 0
    results = {}
    for name in SECTIONS:
        print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
        results[name] = run_section(name, cfg)
    print(markdown(results))
    failed = [name for name, r in results.items() if r.status == "FAIL"]
    if args.out:
        report = {
            "device": str(cfg.device),
            "config": {**asdict(cfg), "device": str(cfg.device)},
            "environment": environment(cfg.device),
            "sections": {name: asdict(r) for name, r in results.items()},
            "failed": failed,
        }
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if failed:
        print(f"gpu_check: FAILED sections: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
