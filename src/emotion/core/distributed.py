"""DDP helpers: the same script runs alone or under ``torchrun`` (NCCL on GPUs, gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(prefer_cuda: bool = True) -> DistContext:
    """Initialise the process group when launched by torchrun; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = prefer_cuda and torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        deterministic_cuda()
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DistContext(rank, world, local_rank, device)


def deterministic_cuda() -> None:
    """Ask CUDA for run-to-run reproducible kernels: deterministic cuDNN algorithms without
    autotuning, a fixed cuBLAS workspace, and PyTorch's deterministic implementations (ops that
    have none warn instead of failing). Same GPU model, driver and library versions assumed."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def barrier(ctx: DistContext) -> None:
    if ctx.world > 1:
        dist.barrier()


def broadcast(ctx: DistContext, obj: Any) -> Any:
    """``obj`` as rank 0 has it, on every rank (picklable objects only)."""
    if ctx.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def teardown(ctx: DistContext) -> None:
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
