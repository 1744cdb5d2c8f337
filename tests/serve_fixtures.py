"""A real exported model for serving tests: a tiny untrained CNN, fp32 + int8 ONNX + model.json."""

from __future__ import annotations

import io
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from emotion.export.contract import ModelContract
from emotion.export.datacard import DataCard
from emotion.export.onnx_export import export_onnx, publish_contract
from emotion.export.quantize import quantize
from emotion.training.model import build_model, normalization
from emotion.vision.preprocessing import PreprocessingContract
from emotion.vision.tta import TestTimeAugmentation

from .conftest import free_ports, section

CLASSES = ("angry", "fearful", "happy", "neutral", "sad", "surprised")
IMAGE_SIZE = 48
#: mediapipe's box for the astronaut's face (x, y, width, height) in the 512x512 photo.
ASTRONAUT_FACE = (177, 82, 95, 95)
TEMPERATURE = 0.37  #: the test model's softmax temperature (any value but 1 proves it is applied)
REPO = Path(__file__).resolve().parents[1]
FACE_MODEL = REPO / "assets" / "face_detection_short_range.tflite"
DEMO_CARD = REPO / "datasets" / "demo.yaml"


def export_tiny_model(out: Path, seed: int = 0) -> Path:
    """Export an untrained ``emotion_cnn_s`` (1 channel, 48 px) the way the export stage does."""
    torch.manual_seed(seed)
    spec = section("model", name="emotion_cnn_s", in_chans=1, image_size=IMAGE_SIZE, head_hidden=32)
    model = build_model(spec, len(CLASSES)).eval()
    mean, std = normalization(model, 1)
    fp32, int8 = out / "model.onnx", out / "model.int8.onnx"
    result = export_onnx(model, fp32, (1, IMAGE_SIZE, IMAGE_SIZE), opsets=(17,))
    quantize(fp32, int8, "dynamic")
    contract = ModelContract(
        classes=CLASSES,
        preprocessing=PreprocessingContract(
            IMAGE_SIZE, IMAGE_SIZE, 1, tuple(mean), tuple(std), face_margin=0.25
        ),
        tta=TestTimeAugmentation("none", 0.9),
        temperature=TEMPERATURE,
        opset=result.opset,
        source={
            "model_name": spec.name,
            "note": "untrained test model",
            "training_data": DataCard.load(DEMO_CARD).to_dict(),
        },
    )
    publish_contract(out, contract, {"fp32": fp32.name, "int8": int8.name})
    return out


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **save: object) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


def fer_crop(size: int = IMAGE_SIZE) -> Image.Image:
    """A FER-style tight grayscale face crop: the astronaut's face box, resized to ``size``."""
    x, y, w, h = ASTRONAUT_FACE
    return astronaut().crop((x, y, x + w, y + h)).convert("L").resize((size, size))


def free_port() -> int:
    return free_ports(1)[0]


#: How tests run the ``emotion`` command: this interpreter, this checkout.
EMOTION = (sys.executable, "-m", "emotion.tools.cli")


@contextmanager
def emotion_serve(
    *args: str,
    log: Path | None = None,
    command: Sequence[str] = EMOTION,
    cwd: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``emotion serve ARGS`` in a subprocess (``command``: how ``emotion`` is run); yields its
    base URL once /health answers.

    Its output goes to ``log`` (a temp file by default), so a long run never blocks on a pipe.
    """
    port = free_port()
    scheme = "https" if "--ssl-certfile" in args else "http"
    cmd = [*command, "serve", "--port", str(port), *args]
    url = f"{scheme}://127.0.0.1:{port}"
    verify: ssl.SSLContext | bool = True
    if scheme == "https":
        verify = ssl.create_default_context(cafile=args[args.index("--ssl-certfile") + 1])
    with tempfile.TemporaryDirectory() as tmp:
        log = log or Path(tmp) / "serve.log"
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=cwd)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/health", verify=verify, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "emotion serve did not start"
                time.sleep(0.2)
            yield url, proc
        finally:
            proc.terminate()
            proc.wait(30)
