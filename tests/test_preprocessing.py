"""The one preprocessing contract: torch (training) and numpy/Pillow (serving) agree at every size
pair the profiles use, and serving's first resize is the balance stage's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from emotion.core.errors import DataError
from emotion.data.decode import load_images
from emotion.tools import profiles
from emotion.training.tensordata import Preprocess
from emotion.vision.preprocessing import PreprocessingContract
from emotion.vision.tta import TTA_VIEWS, TestTimeAugmentation

from .conftest import REPO

FER_NATIVE = 48  #: FER2013's image size (balance.image_size null keeps it)


def profile_size_pairs() -> set[tuple[int, int]]:
    """(source_size, image_size) of the defaults and of every profile."""
    texts = [(REPO / "params.yaml").read_text()]
    texts += [
        profiles.render(n, params=REPO / "params.yaml", profiles_dir=REPO / "profiles")
        for n in profiles.available(REPO / "profiles")
    ]
    pairs = set()
    for text in texts:
        p = yaml.safe_load(text)
        source = p["balance"]["image_size"] or FER_NATIVE
        pairs.add((source, p["model"]["image_size"]))
    return pairs


PAIRS = sorted(profile_size_pairs())


def test_the_profiles_include_an_upsampling_pair() -> None:
    """The workstation trains 224 px models on 48 px images: that pair must be covered."""
    assert (48, 48) in PAIRS
    assert any(target > source for source, target in PAIRS)


TTAS = [TestTimeAugmentation(mode, 0.9) for mode in TTA_VIEWS]


@pytest.mark.parametrize(("source", "target"), PAIRS)
@pytest.mark.parametrize("chans", [1, 3])
def test_serving_batch_equals_the_training_tensor_path(
    source: int, target: int, chans: int
) -> None:
    contract = PreprocessingContract(
        source, target, chans, (0.485, 0.456, 0.406)[:chans], (0.229, 0.224, 0.225)[:chans], 0.25
    )
    gray = np.random.default_rng(source + target).integers(0, 256, (4, source, source), np.uint8)
    served = contract.batch(gray)
    trained = Preprocess(contract)(torch.from_numpy(gray)[:, None], torch.device("cpu")).numpy()
    assert served.shape == trained.shape == (4, chans, target, target)
    # float32 rounding of two resampling implementations: well below one grey level (1/255/std)
    np.testing.assert_allclose(served, trained, atol=1e-4)


@pytest.mark.parametrize(("source", "target"), PAIRS)
@pytest.mark.parametrize("tta", TTAS, ids=lambda t: t.mode)
def test_serving_tta_views_equal_the_evaluate_stage_views(
    source: int, target: int, tta: TestTimeAugmentation
) -> None:
    """Every view (crops, mirrors, the resize of each crop) agrees between numpy and torch."""
    contract = PreprocessingContract(source, target, 1, (0.5,), (0.25,), 0.25)
    gray = np.random.default_rng(source * target).integers(0, 256, (3, source, source), np.uint8)
    served = contract.views(gray, tta)
    evaluated = Preprocess(contract).views(
        torch.from_numpy(gray)[:, None], torch.device("cpu"), tta
    )
    assert served.shape == tuple(evaluated.shape) == (3, tta.views, 1, target, target)
    np.testing.assert_allclose(served, evaluated.numpy(), atol=1e-4)
    if tta.mode != "ten_crop":  # the first view is the plain image
        np.testing.assert_array_equal(served[:, 0], contract.batch(gray))


def test_ten_crop_takes_the_corners_and_the_centre() -> None:
    assert TestTimeAugmentation("ten_crop", 0.9).boxes(48) == [
        (0, 0, 43), (0, 5, 43), (5, 0, 43), (5, 5, 43), (2, 2, 43)
    ]  # fmt: skip
    assert TestTimeAugmentation("flip", 0.9).boxes(48) == [(0, 0, 48)]
    with pytest.raises(DataError, match=r"model\.json.*test-time"):
        TestTimeAugmentation.from_dict({"mode": "five_crop", "crop": 0.9}, "model.json")


@pytest.mark.parametrize("crop", [37, 95, 300])
def test_a_face_crop_is_resized_to_the_source_size_like_the_balance_stage(
    crop: int, tmp_path: Path
) -> None:
    """Serving's first resize (any crop -> source size) is byte for byte the training data's."""
    pixels = np.random.default_rng(crop).integers(0, 256, (crop, crop), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "face.png")
    stored, _ = load_images([str(tmp_path / "face.png")], FER_NATIVE)
    contract = PreprocessingContract(FER_NATIVE, 224, 1, (0.5,), (0.25,), 0.25)
    with Image.open(tmp_path / "face.png") as image:
        np.testing.assert_array_equal(contract.image_to_gray(image), stored[0])


def test_contract_round_trips_and_rejects_another_resize() -> None:
    contract = PreprocessingContract(48, 224, 3, (0.5,) * 3, (0.25,) * 3, None)
    data = contract.to_dict()
    assert PreprocessingContract.from_dict(data, "x") == contract
    with pytest.raises(DataError, match=r"ckpt\.pth.*resample"):
        PreprocessingContract.from_dict({**data, "resample": "nearest"}, "ckpt.pth")
    with pytest.raises(DataError, match=r"ckpt\.pth.*malformed"):
        PreprocessingContract.from_dict({k: v for k, v in data.items() if k != "std"}, "ckpt.pth")


@pytest.mark.parametrize(("source", "target"), PAIRS)
@pytest.mark.parametrize("tta", TTAS, ids=lambda t: t.mode)
def test_the_independent_client_follows_the_contract(
    source: int, target: int, tta: TestTimeAugmentation, tmp_path: Path
) -> None:
    """A client that reads only model.json gets the server's model input, view for view."""
    from . import independent_client

    contract = PreprocessingContract(source, target, 3, (0.5,) * 3, (0.25,) * 3, 0.25)
    pixels = np.random.default_rng(target).integers(0, 256, (131, 131), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "crop.png")
    with Image.open(tmp_path / "crop.png") as image:
        served = contract.views([contract.image_to_gray(image)], tta)[0]
    exported = {"preprocessing": contract.to_dict(), "tta": tta.to_dict()}
    theirs = independent_client.views(tmp_path / "crop.png", exported)
    np.testing.assert_allclose(theirs, served, atol=1e-6)
