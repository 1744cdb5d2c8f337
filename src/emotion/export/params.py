"""Params section ``export``: ONNX export, parity proof, int8 quantization, latency."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from emotion.core.config import PositiveInt, Section


class ExportParams(Section):
    """ONNX export, parity proof, int8 quantization and latency benchmark (stage ``export``)."""

    opset: Annotated[int, Field(ge=7)]
    fallback_opset: Annotated[int, Field(ge=7)]
    parity_atol: Annotated[float, Field(gt=0.0)]
    quantize: Literal["static", "dynamic"]
    per_channel: bool
    reduce_range: bool
    calibration_images: PositiveInt
    latency_runs: Annotated[int, Field(ge=10)]
    throughput_batch: PositiveInt
    data_card: str  #: YAML dataset card of the training data (datasets/*.yaml)
