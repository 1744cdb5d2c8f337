"""An exported model: its contract (``model.json``) and an ONNX Runtime session for one variant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from emotion.core.errors import DataError
from emotion.core.hashing import sha256_file
from emotion.export.contract import CONTRACT_FILE, METADATA_KEY, ModelContract
from emotion.vision.calibration import probabilities

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
#: Runs of more model inputs than this give their memory back to the system afterwards: ONNX
#: Runtime's arena would otherwise keep the largest batch (an explanation's) for the process's
#: lifetime, while smaller runs reuse it as they are (the fast path).
SHRINK_ABOVE = 32


def _shrinking_run() -> ort.RunOptions:
    options = ort.RunOptions()
    devices = "cpu:0;gpu:0" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu:0"
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", devices)
    return options


class OnnxEmotionModel:
    """Classifies preprocessed batches; ``run`` is thread-safe (ONNX Runtime sessions are).

    Loading checks the served file against the contract: SHA-256, tensor names and shape, and
    the contract embedded in the ONNX metadata (when present) against ``model.json``.
    """

    def __init__(self, model_dir: str | Path, variant: str = "fp32") -> None:
        model_dir = Path(model_dir)
        self.contract = ModelContract.load(model_dir / CONTRACT_FILE)
        entry = self.contract.files.get(variant)
        if entry is None:
            raise DataError(
                f"{model_dir / CONTRACT_FILE}: no '{variant}' model (has: "
                f"{', '.join(self.contract.files) or 'none'}); pick another --variant or re-export"
            )
        self.variant = variant
        self.path = model_dir / entry["path"]
        if not self.path.is_file():
            raise DataError(f"{self.path}: model file not found; run `dvc repro export`")
        self.sha256 = sha256_file(self.path)
        if entry.get("sha256") and entry["sha256"] != self.sha256:
            raise DataError(
                f"{self.path}: SHA-256 {self.sha256[:12]}… differs from {CONTRACT_FILE} "
                f"({entry['sha256'][:12]}…); the model and its contract are out of sync, "
                "run `dvc checkout` or `dvc repro export`"
            )
        available = ort.get_available_providers()
        self.providers = [p for p in PREFERRED_PROVIDERS if p in available]
        options = ort.SessionOptions()
        # no CPU arena: it would keep the largest batch's memory for the process's lifetime
        options.enable_cpu_mem_arena = True
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=self.providers)
        except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no base
            raise DataError(
                f"{self.path}: ONNX Runtime cannot load it ({type(exc).__name__}: "
                f"{str(exc).strip()[:300]}); re-export it (`dvc repro export`) or `dvc checkout`"
            ) from None
        self._shrinking = _shrinking_run()
        self._check_session()

    def _check_session(self) -> None:
        contract, prep = self.contract, self.contract.preprocessing
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if contract.input_name not in inputs or contract.output_name not in outputs:
            raise DataError(
                f"{self.path}: expected input '{contract.input_name}' and output "
                f"'{contract.output_name}', found {sorted(inputs)} -> {sorted(outputs)}"
            )
        shape = inputs[contract.input_name].shape
        if list(shape[1:]) != [prep.in_chans, prep.image_size, prep.image_size]:
            raise DataError(
                f"{self.path}: input shape {shape} does not match the contract "
                f"(batch, {prep.in_chans}, {prep.image_size}, {prep.image_size})"
            )
        embedded = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if embedded is not None:
            inner = json.loads(embedded)
            outer = contract.to_dict()
            for key in ("classes", "preprocessing", "tta", "input", "output"):
                if inner.get(key) != outer[key]:
                    raise DataError(
                        f"{self.path}: embedded contract differs from {CONTRACT_FILE} in "
                        f"'{key}'; re-export the model"
                    )

    @property
    def classes(self) -> tuple[str, ...]:
        return self.contract.classes

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, C, H, W) model input -> (N, classes) logits."""
        options = self._shrinking if len(batch) > SHRINK_ABOVE else None
        feeds = {self.contract.input_name: batch}
        (logits,) = self.session.run([self.contract.output_name], feeds, options)
        return logits

    def probabilities(self, views: np.ndarray) -> np.ndarray:
        """float32 (N, views, C, H, W) -> (N, classes): calibrated softmax, averaged over views."""
        logits = self.logits(np.ascontiguousarray(views.reshape(-1, *views.shape[2:])))
        return probabilities(logits.reshape(*views.shape[:2], -1), self.contract.temperature)

    def describe(self) -> dict[str, Any]:
        """What ``/metadata`` reports about the served model."""
        contract = self.contract.to_dict()
        return {
            "labels": list(self.classes),
            "variant": self.variant,
            "model_file": self.path.name,
            "sha256": self.sha256,
            "available_variants": sorted(self.contract.files),
            "opset": self.contract.opset,
            "input": contract["input"],
            "output": contract["output"],
            "preprocessing": contract["preprocessing"],
            "contract_tta": contract["tta"],
            "source": self.contract.source,
            "providers": self.session.get_providers(),
        }
