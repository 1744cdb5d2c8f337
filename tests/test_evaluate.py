"""Evaluate-stage code: temperature scaling, TTA probabilities, extra labelled sets, params."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from emotion.core.errors import ConfigError, DataError
from emotion.data.labels import LabelMap
from emotion.tools.params_file import load_params, validate_params
from emotion.training.extrasets import extra_set_metrics, load_extra_set
from emotion.vision.calibration import fit_temperature, nll, probabilities, softmax

from .conftest import REPO, section

CLASSES = tuple(section("ingest").classes)

LABELS = LabelMap(CLASSES, {"happiness": "happy", "surprise": "surprised"}, ["disgust"])


def sampled_logits(temperature: float, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from ``softmax(logits / temperature)``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, (n, 1, len(CLASSES)))
    probs = softmax(logits[:, 0] / temperature)
    labels = np.array([rng.choice(len(CLASSES), p=p) for p in probs])
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_temperature_scaling_recovers_the_temperature_and_keeps_the_argmax(true_t: float) -> None:
    logits, labels = sampled_logits(true_t, 6000)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.08)
    before, after = probabilities(logits, 1.0), probabilities(logits, fitted)
    assert nll(after, labels) < nll(before, labels)
    np.testing.assert_array_equal(after.argmax(1), before.argmax(1))
    held_out, held_labels = sampled_logits(true_t, 3000, seed=1)
    assert nll(probabilities(held_out, fitted), held_labels) < nll(
        probabilities(held_out, 1.0), held_labels
    )


def test_tta_probabilities_average_the_calibrated_views() -> None:
    logits = np.random.default_rng(3).normal(size=(4, 10, len(CLASSES)))
    expected = np.mean([softmax(logits[:, v] / 1.5) for v in range(10)], axis=0)
    np.testing.assert_allclose(probabilities(logits, 1.5), expected)
    with pytest.raises(ValueError, match="views"):
        probabilities(logits[:, 0], 1.0)


def test_an_extra_set_maps_aliases_drops_and_keeps_only_its_classes(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_tree({"Happiness": 3, "sad": 2, "SURPRISE": 2, "disgust": 4})
    split = load_extra_set(root, LABELS, 48, tmp_path, workers=1)
    assert split.images.shape == (7, 1, 48, 48)
    assert sorted(split.frame["label"]) == ["happy"] * 3 + ["sad"] * 2 + ["surprised"] * 2
    y = split.labels.numpy()
    probs = np.eye(len(CLASSES))[np.where(y == CLASSES.index("sad"), 0, y)]  # sad -> angry
    scores = extra_set_metrics(y, probs, list(CLASSES))
    assert scores["n"] == 7
    assert scores["accuracy"] == pytest.approx(5 / 7, abs=1e-6)
    assert scores["recall"] == {"happy": 1.0, "sad": 0.0, "surprised": 1.0}
    assert set(scores["confusion"]) == {"happy", "sad", "surprised"}
    assert scores["confusion"]["sad"]["angry"] == 2
    assert scores["macro_f1"] == pytest.approx(2 / 3, abs=1e-6)  # absent classes not averaged


def test_a_corrupt_file_in_an_extra_set_is_named(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_tree({"happy": 2})
    (root / "happy" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"(?s)evaluate\.extra_sets.*broken\.png") as error:
        load_extra_set(root, LABELS, 48, tmp_path, workers=1)
    assert "on_corrupt" not in str(error.value)  # no skipping: every image of a set counts


def test_an_unknown_class_folder_in_an_extra_set_says_how_to_map_it(
    make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_tree({"happy": 1, "contempt": 1})
    with pytest.raises(DataError, match=r"'contempt'.*ingest\.aliases"):
        load_extra_set(root, LABELS, 48, tmp_path, workers=1)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["elsewhere/ckplus"], r"extra_sets\[0\].*data/extra/"),
        (["data/extra/a/b"], r"extra_sets\[0\].*data/extra/"),
        (["data/extra/ck", "data/extra/ck.csv"], "unique"),
    ],
)
def test_extra_sets_must_live_in_the_evaluate_dependency(sets: list[str], message: str) -> None:
    data = load_params(REPO / "params.yaml").model_dump()
    data["evaluate"]["extra_sets"] = sets
    with pytest.raises(ConfigError, match=message):
        validate_params(data)
    assert section("evaluate", extra_sets=["data/extra/ckplus"]).extra_sets == ["data/extra/ckplus"]
