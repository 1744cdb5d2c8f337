"""The exported model's contract (``model.json``): what any client needs to use the ONNX model.

Classes, tensor names, the :class:`~emotion.vision.preprocessing.PreprocessingContract` the model
was trained with, the test-time augmentation and softmax temperature the evaluate stage measured
(the calibrated probability of a class is the mean over views of ``softmax(logits / T)``), and
the files with their hashes. Deliberately free of torch: a server or a
third-party client needs only numpy, Pillow and onnxruntime. The same dictionary is embedded in
the ONNX file's ``metadata_props``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion.core.atomic import write_json
from emotion.core.errors import DataError
from emotion.core.reading import read_json
from emotion.vision.preprocessing import PreprocessingContract
from emotion.vision.tta import NO_TTA, TestTimeAugmentation

CONTRACT_FILE = "model.json"
FORMAT = "emotion-onnx"
FORMAT_VERSION = 3  # 2: preprocessing names both resizes; 3: test-time augmentation, temperature
METADATA_KEY = "emotion_contract"


@dataclass(frozen=True)
class ModelContract:
    """Classes, tensor names and preprocessing of an exported model, plus its provenance."""

    classes: tuple[str, ...]
    preprocessing: PreprocessingContract
    tta: TestTimeAugmentation = NO_TTA
    temperature: float = 1.0
    input_name: str = "input"
    output_name: str = "logits"
    opset: int = 17
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        size, chans = self.preprocessing.image_size, self.preprocessing.in_chans
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "classes": list(self.classes),
            "input": {
                "name": self.input_name,
                "dtype": "float32",
                "layout": "NCHW",
                "shape": ["batch", chans, size, size],
            },
            "output": {
                "name": self.output_name,
                "dtype": "float32",
                "postprocess": "softmax",
                "temperature": self.temperature,
            },
            "preprocessing": self.preprocessing.to_dict(),
            "tta": self.tta.to_dict(),
            "opset": self.opset,
            "files": self.files,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = CONTRACT_FILE) -> ModelContract:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{origin}: not an {FORMAT} v{FORMAT_VERSION} contract "
                f"(format={data.get('format')!r}, version={data.get('format_version')!r}); "
                "re-export with `dvc repro export`"
            )
        try:
            prep = PreprocessingContract.from_dict(data["preprocessing"], origin)
            if prep.face_margin is None:
                raise DataError(f"{origin}: preprocessing.face_margin must be a number")
            return cls(
                classes=tuple(data["classes"]),
                preprocessing=prep,
                tta=TestTimeAugmentation.from_dict(data["tta"], origin),
                temperature=float(data["output"]["temperature"]),
                input_name=data["input"]["name"],
                output_name=data["output"]["name"],
                opset=int(data["opset"]),
                files=dict(data.get("files", {})),
                source=dict(data.get("source", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{origin}: malformed model contract ({exc!r})") from None

    @classmethod
    def load(cls, path: str | Path) -> ModelContract:
        path = Path(path)
        data = read_json(path, "model contract", "run `dvc repro export`")
        return cls.from_dict(data, str(path))

    def save(self, path: str | Path) -> Path:
        return write_json(Path(path), self.to_dict())
