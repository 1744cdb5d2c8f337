"""The on-device client's preprocessing (client/src, run by Node) against the server's Python.

The browser must compute the very pixels the server computes, so the JavaScript port of Pillow's
resampling, the grayscale conversion, the face crop box, the test-time views and the calibrated
softmax are checked here value for value (exact for pixels and model inputs). Node is required:
without it these tests fail, as the client could not be checked at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from emotion.vision.calibration import probabilities
from emotion.vision.facedetect import Face
from emotion.vision.preprocessing import PreprocessingContract
from emotion.vision.tta import TestTimeAugmentation

CLIENT = Path(__file__).resolve().parents[1] / "client"
STATIC = Path(__file__).resolve().parents[1] / "src/emotion/serve/static"


def node(script: str, job: Any) -> Any:
    """Run an ES module ``script`` in client/ with ``job`` (JSON) on stdin; its JSON stdout."""
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node not found: install Node.js 20+ (the on-device client needs it)")
    source = (
        'import { readFileSync } from "node:fs";\n'
        'import { resize } from "./src/resample.js";\n'
        'import { Contract, grayFromRGBA, roundHalfEven } from "./src/contract.js";\n'
        'const job = JSON.parse(readFileSync(0, "utf8"));\n' + script
    )
    done = subprocess.run(
        [exe, "--input-type=module", "-e", source],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=CLIENT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_client_module_parses() -> None:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node not found: install Node.js 20+ (the on-device client needs it)")
    modules = [*sorted((CLIENT / "src").glob("*.js")), CLIENT / "sw.js", *STATIC.glob("*.js")]
    for module in modules:
        done = subprocess.run([exe, "--check", str(module)], capture_output=True, text=True)
        assert done.returncode == 0, f"{module}: {done.stderr}"


#: (width, height, out width, out height): square crops to the stored size, detection upscales,
#: and one shape of each pass order Pillow picks (width grows + height shrinks: vertical first)
SIZES = [
    (48, 48, 48, 48),
    (200, 200, 48, 48),
    (37, 37, 48, 48),
    (48, 48, 40, 40),
    (30, 20, 97, 64),
    (50, 46, 48, 48),
    (37, 53, 48, 48),
    (53, 37, 48, 48),
]


@pytest.mark.parametrize("filter_name", ["lanczos", "bilinear"])
def test_8_bit_resampling_is_pillows_to_the_pixel(filter_name: str) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w), dtype=np.uint8) for w, h, _, _ in SIZES]
    job = [
        {"pixels": im.ravel().tolist(), "size": [w, h], "out": [ow, oh]}
        for im, (w, h, ow, oh) in zip(images, SIZES, strict=True)
    ]
    script = f"""
    const out = job.map((j) => Array.from(resize(Uint8Array.from(j.pixels), j.size[0], j.size[1],
      j.out[0], j.out[1], "{filter_name}")));
    console.log(JSON.stringify(out));
    """
    resample = {"lanczos": Image.Resampling.LANCZOS, "bilinear": Image.Resampling.BILINEAR}
    for got, image, (_, _, ow, oh) in zip(node(script, job), images, SIZES, strict=True):
        expected = np.asarray(Image.fromarray(image).resize((ow, oh), resample[filter_name]))
        np.testing.assert_array_equal(np.asarray(got, dtype=np.uint8).reshape(oh, ow), expected)


def test_uneven_shrinking_whose_pass_order_is_not_pinned_down_is_refused() -> None:
    """Both sides shrinking by different factors: Pillow 13's pass order was not pinned down."""
    script = """
    try { resize(new Uint8Array(60 * 53), 60, 53, 48, 40, "lanczos"); console.log('"ran"'); }
    catch (err) { console.log(JSON.stringify(err.message)); }
    """
    assert "shrinking both sides unevenly is not supported" in node(script, None)


def test_float_resampling_is_pillows_in_float32() -> None:
    rng = np.random.default_rng(1)
    shapes = [(43, 43, 48, 48), (48, 48, 40, 40), (60, 60, 48, 48)]
    images = [rng.random((h, w), dtype=np.float32) for w, h, _, _ in shapes]
    job = [
        {"pixels": im.ravel().tolist(), "size": [w, h], "out": [ow, oh]}
        for im, (w, h, ow, oh) in zip(images, shapes, strict=True)
    ]
    script = """
    const out = job.map((j) => Array.from(resize(Float32Array.from(j.pixels), j.size[0],
      j.size[1], j.out[0], j.out[1], "bilinear")));
    console.log(JSON.stringify(out));
    """
    for got, image, (_, _, ow, oh) in zip(node(script, job), images, shapes, strict=True):
        pil = Image.fromarray(image, mode="F").resize((ow, oh), Image.Resampling.BILINEAR)
        np.testing.assert_array_equal(
            np.asarray(got, dtype=np.float32).reshape(oh, ow), np.asarray(pil, dtype=np.float32)
        )


def test_grayscale_is_pillows_luma() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (64, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((64, 1), 255, np.uint8)], axis=1)
    got = node(
        "console.log(JSON.stringify(Array.from(grayFromRGBA(Uint8Array.from(job)))));",
        rgba.ravel().tolist(),
    )
    expected = np.asarray(Image.fromarray(rgb[None]).convert("L"))[0]
    np.testing.assert_array_equal(got, expected)


def contract_json(image_size: int, tta: TestTimeAugmentation, temperature: float) -> dict:
    prep = PreprocessingContract(48, image_size, 3, (0.5, 0.4, 0.3), (0.25, 0.2, 0.3), 0.25)
    return {
        "format": "emotion-onnx",
        "format_version": 3,
        "classes": ["angry", "fearful", "happy", "neutral", "sad", "surprised"],
        "input": {"name": "input", "dtype": "float32", "layout": "NCHW"},
        "output": {"name": "logits", "temperature": temperature},
        "preprocessing": prep.to_dict(),
        "tta": tta.to_dict(),
        "files": {},
    }


@pytest.mark.parametrize("mode", ["none", "flip", "ten_crop"])
@pytest.mark.parametrize("image_size", [48, 40])
def test_model_inputs_equal_the_servers_for_every_tta_mode(mode: str, image_size: int) -> None:
    tta = TestTimeAugmentation(mode, 0.9)  # type: ignore[arg-type]
    contract = contract_json(image_size, tta, 0.7)
    gray = np.random.default_rng(3).integers(0, 256, (48, 48), dtype=np.uint8)
    got = node(
        "const c = new Contract(job.contract);"
        "console.log(JSON.stringify(Array.from(c.inputs(Uint8Array.from(job.gray)))));",
        {"contract": contract, "gray": gray.ravel().tolist()},
    )
    prep = PreprocessingContract.from_dict(contract["preprocessing"], "test")
    expected = prep.views(gray[None], tta)[0]
    np.testing.assert_array_equal(
        np.asarray(got, dtype=np.float32).reshape(expected.shape), expected
    )


def test_face_crop_and_source_gray_follow_the_server() -> None:
    rng = np.random.default_rng(4)
    faces = [Face(*map(int, rng.integers(0, 300, 2)), *map(int, rng.integers(5, 200, 2)), 0.9)]
    faces += [Face(10, 10, 21, 21, 0.9), Face(0, 0, 399, 5, 0.9), Face(390, 290, 9, 9, 0.9)]
    job = {
        "contract": contract_json(48, TestTimeAugmentation("none", 0.9), 1.0),
        "faces": [f.as_dict() for f in faces],
        "rgba": rng.integers(0, 256, (37 * 29 * 4), dtype=np.uint8).tolist(),
    }
    got = node(
        "const c = new Contract(job.contract);"
        "const boxes = job.faces.map((f) => c.cropBox(f, 400, 300));"
        "const gray = Array.from(c.sourceGray(Uint8Array.from(job.rgba), 37, 29));"
        "console.log(JSON.stringify({ boxes, gray }));",
        job,
    )
    for box, face in zip(got["boxes"], faces, strict=True):
        left, top, right, _ = face.crop_box(0.25, 400, 300)
        assert (box["left"], box["top"], box["side"]) == (left, top, right - left)
    rgb = np.asarray(job["rgba"], dtype=np.uint8).reshape(29, 37, 4)[:, :, :3]
    prep = PreprocessingContract.from_dict(job["contract"]["preprocessing"], "test")
    np.testing.assert_array_equal(
        np.asarray(got["gray"]).reshape(48, 48), prep.image_to_gray(Image.fromarray(rgb))
    )


def test_python_rounding_half_to_even() -> None:
    values = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 3.5000001, 7.0]
    got = node("console.log(JSON.stringify(job.map(roundHalfEven)));", values)
    assert got == [round(v) for v in values]


def test_calibrated_view_average_equals_the_servers() -> None:
    tta = TestTimeAugmentation("ten_crop", 0.9)
    logits = np.random.default_rng(5).normal(0, 3, (10, 6)).astype(np.float32)
    got = node(
        "const c = new Contract(job.contract);"
        "console.log(JSON.stringify(c.probabilities(Float32Array.from(job.logits))));",
        {"contract": contract_json(48, tta, 0.77), "logits": logits.ravel().tolist()},
    )
    np.testing.assert_allclose(got, probabilities(logits[None], 0.77)[0], rtol=1e-12, atol=0)
