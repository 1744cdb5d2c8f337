"""ONNX export: opset fallback, parity, embedded contract, int8 and the latency harness."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from emotion.core.errors import DataError, EmotionError
from emotion.export.contract import ModelContract
from emotion.export.latency import measure
from emotion.export.onnx_export import (
    embed_contract,
    export_onnx,
    ort_logits,
    ort_session,
    parity,
    read_contract,
    torch_logits,
)
from emotion.export.quantize import quantize
from emotion.training.model import build_model
from emotion.vision.preprocessing import PreprocessingContract

from .conftest import section

CLASSES = ("angry", "fearful", "happy", "neutral", "sad", "surprised")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    spec = section("model", name="emotion_cnn_s", in_chans=1, image_size=48, head_hidden=32)
    return build_model(spec, 6).eval()


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((40, 1, 48, 48)).astype(np.float32)


def contract(opset: int = 17) -> ModelContract:
    return ModelContract(
        CLASSES, PreprocessingContract(48, 48, 1, (0.5,), (0.25,), 0.25), opset=opset
    )


def test_export_at_opset_17_matches_pytorch(
    model: torch.nn.Module, inputs: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "m.onnx"
    result = export_onnx(model, path, (1, 48, 48))
    assert result.opset == 17
    assert result.attempts == ()
    proto = onnx.load(path)
    assert {o.domain: o.version for o in proto.opset_import}.get("", 17) == 17
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"  # dynamic batch axis
    proof = parity(torch_logits(model, inputs), ort_logits(ort_session(path), inputs))
    assert proof["max_abs_logit_diff"] < 1e-4
    assert proof["top1_agreement"] == 1.0
    single = ort_logits(ort_session(path), inputs[:1])  # batch 1 through the same graph
    assert single.shape == (1, 6)


def test_a_failing_opset_17_export_falls_back_to_11(
    model: torch.nn.Module, inputs: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forced failure of the preferred opset: the fallback model must still prove parity."""
    real_export = torch.onnx.export

    def export_failing_at_17(*args, **kwargs):
        if kwargs.get("opset_version") == 17:
            raise RuntimeError(
                "Exporting the operator 'aten::fancy_op' to opset 17 is not supported"
            )
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export_failing_at_17)
    path = tmp_path / "m.onnx"
    result = export_onnx(model, path, (1, 48, 48), (17, 11))
    assert result.opset == 11
    assert result.attempts[0][0] == 17
    assert "aten::fancy_op" in result.attempts[0][1]
    assert {o.domain: o.version for o in onnx.load(path).opset_import}[""] == 11
    proof = parity(torch_logits(model, inputs), ort_logits(ort_session(path), inputs))
    assert proof["max_abs_logit_diff"] < 1e-4
    assert proof["top1_agreement"] == 1.0


def test_an_unsupported_opset_is_a_real_failure_and_falls_back(
    model: torch.nn.Module, tmp_path: Path
) -> None:
    result = export_onnx(model, tmp_path / "m.onnx", (1, 48, 48), (99, 11))
    assert result.opset == 11
    assert "99" in result.attempts[0][1]
    with pytest.raises(EmotionError, match="every opset"):
        export_onnx(model, tmp_path / "never.onnx", (1, 48, 48), (98, 99))
    assert not (tmp_path / "never.onnx").exists()


def test_contract_round_trips_through_onnx_metadata_and_sidecar(
    model: torch.nn.Module, tmp_path: Path
) -> None:
    path = tmp_path / "m.onnx"
    export_onnx(model, path, (1, 48, 48))
    original = dataclasses.replace(contract(), source={"model_name": "emotion_cnn_s"})
    embed_contract(path, original)
    assert read_contract(path) == original
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["classes"] == ",".join(CLASSES)
    original.save(tmp_path / "model.json")
    assert ModelContract.load(tmp_path / "model.json") == original
    ort_session(path)  # metadata does not break loading


def test_contract_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        ModelContract.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match=r"bad\.json.*not an emotion-onnx"):
        ModelContract.load(tmp_path / "bad.json")


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_int8_quantization_runs_and_is_smaller(
    model: torch.nn.Module, inputs: np.ndarray, tmp_path: Path, mode: str
) -> None:
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    export_onnx(model, fp32, (1, 48, 48))
    quantize(fp32, int8, mode, inputs[:16])
    assert int8.stat().st_size < fp32.stat().st_size / 2
    ops = {n.op_type for n in onnx.load(int8).graph.node}
    assert ops & {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger"}
    reference = ort_logits(ort_session(fp32), inputs)
    quantized = ort_logits(ort_session(int8), inputs)
    assert quantized.shape == reference.shape
    assert np.abs(quantized - reference).max() < 0.5 * np.abs(reference).max()


def test_static_quantization_needs_calibration_images(
    model: torch.nn.Module, tmp_path: Path
) -> None:
    export_onnx(model, tmp_path / "m.onnx", (1, 48, 48))
    with pytest.raises(ValueError, match="calibration"):
        quantize(tmp_path / "m.onnx", tmp_path / "q.onnx", "static", None)


def test_latency_harness_reports_every_runtime(inputs: np.ndarray) -> None:
    calls = {"a": 0, "b": 0}

    def runtime(name: str):
        def run(x: np.ndarray) -> None:
            calls[name] += len(x)

        return run

    report = measure({"a": runtime("a"), "b": runtime("b")}, inputs, runs=20, batch_size=8)
    assert set(report) == {"a", "b"}
    for values in report.values():
        assert values["batch1_p50_ms"] <= values["batch1_p95_ms"]
        assert values["batch8_images_per_s"] > 0
    assert calls["a"] == calls["b"] > 20
