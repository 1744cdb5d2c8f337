"""ONNX export with a real opset fallback, the model contract embedded, and a parity proof.

The TorchScript-based exporter (``dynamo=False``) is used: it writes the requested opset
directly, where torch 2.14's dynamo exporter builds opset 18 and down-converts (printing a
converter traceback for 17 and unable to reach 11). Whatever the exporter, the parity check
against PyTorch is what makes an exported file trustworthy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from emotion.core.atomic import write_bytes
from emotion.core.errors import EmotionError
from emotion.core.hashing import sha256_file
from emotion.export.contract import CONTRACT_FILE, METADATA_KEY, ModelContract

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ExportResult:
    """The opset that worked and, when it is a fallback, why the preferred one failed."""

    opset: int
    attempts: tuple[tuple[int, str], ...]  # (opset, error) for each failed attempt


def _export_bytes(model: nn.Module, example: torch.Tensor, opset: int) -> bytes:
    buf, chatter = io.BytesIO(), io.StringIO()  # the exporter prints whole IR graphs on errors
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(chatter),
        contextlib.redirect_stderr(chatter),
    ):
        warnings.simplefilter("ignore")  # legacy-exporter deprecation, unsupported-opset notices
        torch.onnx.export(
            model,
            (example,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    data = buf.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return data


def export_onnx(
    model: nn.Module,
    path: Path,
    input_shape: Sequence[int],
    opsets: Sequence[int] = (17, 11),
) -> ExportResult:
    """Export ``model`` (eval mode) to ``path``, trying each opset in turn until one succeeds.

    ``input_shape`` is one example's (C, H, W); the batch axis is dynamic.
    """
    model = model.eval()
    example = torch.zeros(1, *input_shape)
    failures: list[tuple[int, str]] = []
    for opset in opsets:
        try:
            data = _export_bytes(model, example, opset)
        except Exception as exc:  # exporter errors have no common base class
            failures.append((opset, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
            continue
        write_bytes(path, data)
        return ExportResult(opset, tuple(failures))
    raise EmotionError(
        "ONNX export failed at every opset: "
        + "; ".join(f"opset {o}: {err}" for o, err in failures)
        + " — check export.opset / export.fallback_opset or the model's operators"
    )


def embed_contract(path: Path, contract: ModelContract) -> None:
    """Store the contract (JSON) and class names in the ONNX file's metadata, atomically."""
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    props[METADATA_KEY] = json.dumps(contract.to_dict(), sort_keys=True)
    props["classes"] = ",".join(contract.classes)
    del proto.metadata_props[:]
    for key in sorted(props):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, props[key]
    proto.producer_name = "emotion-pipeline"
    write_bytes(path, proto.SerializeToString())


def publish_contract(
    folder: Path, contract: ModelContract, variants: dict[str, str]
) -> ModelContract:
    """Embed ``contract`` in each ONNX file (``variant -> file name`` in ``folder``), then save
    ``model.json`` naming the files with their SHA-256 and size; returns the saved contract."""
    for name in variants.values():
        embed_contract(folder / name, contract)
    files = {
        variant: {
            "path": name,
            "sha256": sha256_file(folder / name),
            "bytes": (folder / name).stat().st_size,
        }
        for variant, name in variants.items()
    }
    published = dataclasses.replace(contract, files=files)
    published.save(folder / CONTRACT_FILE)
    return published


def read_contract(path: Path) -> ModelContract:
    """The contract embedded in an exported ONNX file."""
    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    if METADATA_KEY not in props:
        raise EmotionError(f"{path}: no '{METADATA_KEY}' metadata; re-export with this version")
    return ModelContract.from_dict(json.loads(props[METADATA_KEY]), str(path))


def ort_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU (or CUDA, when available) onnxruntime session; ``threads`` 0 lets ORT choose."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # share the cores
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(path), options, providers=providers)


def ort_logits(session: ort.InferenceSession, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits for float32 NCHW inputs, in batches."""
    name = session.get_inputs()[0].name
    out = [
        session.run(None, {name: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def torch_logits(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Eager PyTorch logits (fp32, eval mode) for the same inputs."""
    model.eval()
    out = [
        model(torch.from_numpy(x[i : i + batch_size])).float().numpy()
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def parity(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Max/mean absolute logit difference and top-1 agreement of two models on the same inputs."""
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    agree = reference.argmax(1) == candidate.argmax(1)
    return {
        "max_abs_logit_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
        "top1_agreement": float(agree.mean()) if agree.size else 1.0,
        "n": len(reference),
    }
