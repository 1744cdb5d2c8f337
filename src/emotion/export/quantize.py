"""int8 quantization with onnxruntime: static QDQ calibrated on real images, or dynamic."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

from emotion.core.atomic import write_bytes

Mode = Literal["static", "dynamic"]


class ArrayReader(CalibrationDataReader):
    """Feeds float32 NCHW calibration batches to onnxruntime's calibrator."""

    def __init__(self, input_name: str, images: np.ndarray, batch_size: int = 32) -> None:
        self._batches = iter(
            [{input_name: images[i : i + batch_size]} for i in range(0, len(images), batch_size)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(
    fp32_path: Path,
    int8_path: Path,
    mode: Mode,
    calibration: np.ndarray | None = None,
    *,
    input_name: str = "input",
    per_channel: bool = True,
    reduce_range: bool = False,
) -> None:
    """Write an int8 copy of ``fp32_path`` to ``int8_path`` (atomically).

    ``static``: QDQ with uint8 activations / int8 weights, ranges from ``calibration`` images
    (onnxruntime's recommended CPU format). ``dynamic``: int8 weights, activation ranges computed
    per batch at run time (no calibration data; only MatMul/Gemm/Conv-style ops are affected).
    """
    with tempfile.TemporaryDirectory() as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        if mode == "static":
            if calibration is None or len(calibration) == 0:
                raise ValueError("static quantization needs calibration images")
            quantize_static(
                prepared,
                out,
                ArrayReader(input_name, calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        else:
            quantize_dynamic(
                prepared,
                out,
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
            )
        write_bytes(int8_path, out.read_bytes())
