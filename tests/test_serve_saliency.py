"""`/predict?explain=true` over HTTP on the released model: the map covers exactly the square the
model classified, at the resolution it claims.

"The square the model saw" is checked, not assumed: classifying that square of the photo on its
own (``detect_face=false``) gives the same probabilities as the explained request, and a square
one cell off does not.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from emotion.serve.settings import RELEASED_MODEL

from .serve_fixtures import FACE_MODEL, REPO, astronaut, emotion_serve, encode

Box = dict[str, int]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    args = ("--model-dir", str(REPO / RELEASED_MODEL), "--face-model", str(FACE_MODEL))
    with emotion_serve(*args) as (url, _):
        yield url


@pytest.fixture(scope="module")
def preprocessing(server: str) -> dict[str, Any]:
    return httpx.get(f"{server}/metadata").json()["preprocessing"]


def predict(url: str, image: Image.Image, query: str = "", fmt: str = "PNG") -> dict[str, Any]:
    files = {"file": ("photo", encode(image, fmt), f"image/{fmt.lower()}")}
    response = httpx.post(f"{url}/predict{query}", files=files, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def model_square(face: Box, margin: float, width: int, height: int) -> Box:
    """The model's view of a face (the preprocessing contract): its box grown by ``margin`` per
    side into a square, moved inside the image where it would cross an edge."""
    side = min(round(max(face["width"], face["height"]) * (1 + 2 * margin)), width, height)
    cx, cy = face["x"] + face["width"] / 2, face["y"] + face["height"] / 2
    x = min(max(0, round(cx - side / 2)), width - side)
    y = min(max(0, round(cy - side / 2)), height - side)
    return {"x": x, "y": y, "width": side, "height": side}


def crop(image: Image.Image, box: Box) -> Image.Image:
    return image.crop((box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]))


def cameraman() -> Image.Image:
    return Image.fromarray(skdata.camera()).convert("RGB")


PHOTOS = {
    "astronaut": astronaut,
    "face near the left edge": lambda: astronaut().crop((160, 0, 512, 512)),
    "cameraman": cameraman,
}


@pytest.mark.parametrize("name", PHOTOS)
def test_the_map_covers_exactly_the_square_the_model_classified(
    server: str, preprocessing: dict[str, Any], name: str
) -> None:
    photo = PHOTOS[name]()
    body = predict(server, photo, "?explain=true")
    saliency, face = body["saliency"], body["face_box"]
    box = saliency["box"]
    assert box == model_square(face, preprocessing["face_margin"], *photo.size)
    for start, side in (("x", "width"), ("y", "height")):  # the face lies inside the square
        assert box[start] <= face[start]
        assert face[start] + face[side] <= box[start] + box[side]

    alone = predict(server, crop(photo, box), "?detect_face=false")
    for label, p in body["predictions"].items():
        assert alone["predictions"][label] == pytest.approx(p, abs=1e-9)
    step = round(saliency["cell"] * box["width"] / saliency["size"])  # one cell, in photo px
    shifted = dict(box, y=box["y"] + step if box["y"] == 0 else box["y"] - step)
    off = predict(server, crop(photo, shifted), "?detect_face=false")["predictions"]
    assert max(abs(off[c] - p) for c, p in body["predictions"].items()) > 1e-4


@pytest.mark.parametrize("name", PHOTOS)
def test_the_map_has_the_resolution_it_states(
    server: str, preprocessing: dict[str, Any], name: str
) -> None:
    saliency = predict(server, PHOTOS[name](), "?explain=true")["saliency"]
    size, grid, cell = saliency["size"], saliency["grid"], saliency["cell"]
    assert size == preprocessing["source_size"]
    assert grid * cell == size
    assert (grid, cell) == (12, 4)  # 8 px patches, stride 4, on the 48 px face
    heat = np.asarray(Image.open(io.BytesIO(base64.b64decode(saliency["png"]))), dtype=int)
    assert heat.shape == (size, size)
    cells = heat.reshape(grid, cell, grid, cell)
    assert (cells.max(axis=(1, 3)) == cells.min(axis=(1, 3))).all()  # one value per cell
    assert heat.max() == 255  # the largest drop is the PNG's 255


def test_a_large_upload_gets_its_square_in_its_own_pixels(
    server: str, preprocessing: dict[str, Any]
) -> None:
    """A 2560 px JPEG is decoded at a reduced scale; the map's box is still in the upload's
    pixels: the model's square around the reported face, five times the 512 px photo's."""
    small = predict(server, astronaut(), "?explain=true")["saliency"]["box"]
    photo = astronaut().resize((2560, 2560), Image.Resampling.LANCZOS)
    body = predict(server, photo, "?explain=true", fmt="JPEG")
    box = body["saliency"]["box"]
    expected = model_square(body["face_box"], preprocessing["face_margin"], *photo.size)
    assert box["width"] == box["height"]
    for key, value in expected.items():
        assert abs(box[key] - value) <= 2  # both rounded from the decoded frame's pixels
        # the detector sees other pixels (JPEG, another scale): the same face within 5%
        assert box[key] == pytest.approx(5 * small[key], abs=0.05 * 5 * small["width"])
