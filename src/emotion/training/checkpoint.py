"""Checkpoints: atomic ``torch.save`` and safe loading (``weights_only=True``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from emotion.core.atomic import write_bytes
from emotion.core.errors import DataError

if TYPE_CHECKING:  # annotations only: the stages that load checkpoints do not depend on them
    from emotion.training.params import ModelParams, TrainParams
    from emotion.vision.preprocessing import PreprocessingContract

FORMAT_VERSION = 2  #: 2: ``model`` is the params section, ``preprocessing`` the contract


def describe_run(
    classes: list[str],
    model: ModelParams,
    preprocessing: PreprocessingContract,
    train: TrainParams,
    world_size: int,
) -> dict[str, Any]:
    """What a best checkpoint stores beside its weights: ``classes``, ``model`` (the params
    section: its one copy, which :func:`emotion.training.model.load_trained` reads),
    ``preprocessing`` (the contract) and ``config`` (the ``train`` section, the world size)."""
    return {
        "classes": classes,
        "model": model.model_dump(),
        "preprocessing": preprocessing.to_dict(),
        "config": {"train": train.model_dump(), "world_size": world_size},
    }


def best_checkpoint(
    state_dict: dict[str, torch.Tensor],
    *,
    epoch: int,
    best: dict[str, Any],
    run: dict[str, Any],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """``best.pth`` / ``best_model.pth``: the kept weights, the epoch and its scores, the run
    (:func:`describe_run`) and the history up to that epoch."""
    return {
        "format_version": FORMAT_VERSION,
        "state_dict": state_dict,
        "epoch": epoch,
        "best": best,
        **run,
        "history": history,
    }


def canonical(obj: Any) -> Any:
    """``obj`` with plain containers rebuilt and strings interned (tensors and state dicts kept).

    Pickle writes an object once per identity, so equal content built differently (read back
    from a resume checkpoint, or computed in this process) would give different bytes; after
    this, equal content gives equal bytes.
    """
    if type(obj) is dict:
        return {canonical(k): canonical(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(canonical(v) for v in obj)
    if type(obj) is str:
        return sys.intern(obj)
    return obj


def save(obj: dict[str, Any], path: Path) -> None:
    """Serialise ``obj`` (tensors, dicts, lists, primitives only) to ``path`` atomically.

    Equal content gives equal bytes (:func:`canonical`), so a resumed run writes the same file
    as an uninterrupted one and ``dvc.lock`` hashes agree.
    """
    buf = io.BytesIO()
    torch.save(canonical(obj), buf)
    write_bytes(path, buf.getvalue())


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing pickled code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: checkpoint not found; run `dvc repro train` first") from None
    except Exception as exc:  # corrupt or truncated file, or not a checkpoint
        raise DataError(f"{path}: not a readable checkpoint ({exc}); delete it and rerun") from None
