"""Explanations: every method on every backbone family, hook hygiene, and the checks."""

from __future__ import annotations

import json
import typing

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from emotion.explain import checks, methods
from emotion.explain.explainer import Explainer, evaluate_method
from emotion.explain.layers import TargetLayer
from emotion.explain.params import ExplainMethod, ExplainParams
from emotion.explain.patterns import ProbeRegions
from emotion.explain.probe import select_probes
from emotion.training.model import build_model
from emotion.training.tensordata import Preprocess
from emotion.vision.preprocessing import PreprocessingContract

from .conftest import REPO, section

FAMILIES = ["emotion_cnn_s", "resnet18", "convnext_atto", "efficientnet_b0", "vit_tiny_patch16_224"]
TINY = section("explain", shap_nsamples=4, lime_samples=20, lime_segments=6, curve_steps=4)


def _model(name: str, classes: int, size: int, hidden: int) -> nn.Module:
    fields = {"name": name, "in_chans": 1, "image_size": size, "head_hidden": hidden}
    return build_model(section("model", **fields, head_dropout=0.0), classes)


def _pre(size: int) -> Preprocess:
    return Preprocess(PreprocessingContract(size, size, 1, (0.5,), (0.25,), None))


def _hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def _explainer(name: str, size: int = 32, cfg: ExplainParams = TINY) -> Explainer:
    torch.manual_seed(0)
    model = _model(name, 3, size, 8).eval()
    twin = _model(name, 3, size, 8).eval()
    background = np.random.default_rng(0).integers(0, 255, (2, size, size)).astype(np.float64)
    return Explainer(model, twin, _pre(size), background, cfg)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_method_gives_maps_of_the_right_shape_and_leaves_no_hooks(name: str) -> None:
    ex = _explainer(name)
    images = np.random.default_rng(1).integers(0, 255, (2, 32, 32)).astype(np.float64)
    x = ex.inputs(images)
    before_out, before_hooks = ex.model(x).detach(), _hooks(ex.model)
    for method in ("gradcam", "gradcam_pp", "shap", "lime", "random"):
        maps = ex.maps(method, images, np.array([0, 2]))
        assert maps.shape == (2, 32, 32), method
        assert np.isfinite(maps).all(), method
        assert (maps >= 0).all(), method
        assert _hooks(ex.model) == before_hooks, f"{method} left hooks on the model"
    assert torch.equal(ex.model(x).detach(), before_out)


def test_methods_are_bound_once_and_the_layer_resolved_once_per_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolved: list[str] = []
    real = TargetLayer.of

    def counting(model: nn.Module, override: str = "auto") -> TargetLayer:
        resolved.append(override)
        return real(model, override)

    monkeypatch.setattr(TargetLayer, "of", counting)
    ex = _explainer("resnet18")
    images = np.random.default_rng(1).integers(0, 255, (2, 32, 32)).astype(np.float64)
    first = ex.maps("gradcam", images, np.array([0, 2]))
    for method in ("gradcam", "gradcam_pp", "gradcam", "gradcam_pp"):
        for randomised in (False, True):
            ex.maps(method, images, np.array([1, 0]), randomised=randomised)
    assert np.array_equal(ex.maps("gradcam", images, np.array([0, 2])), first)
    assert ex.target_layer == "backbone.layer4.-1"
    assert len(resolved) == 2  # once for the model, once for its twin
    assert ex.method("gradcam") is ex.method("gradcam")
    assert ex.method("gradcam") is not ex.method("gradcam", randomised=True)


class IdentityExplainer(Explainer):
    """A broken method on purpose: the 'saliency' is the input image itself."""

    def maps(
        self,
        method: str,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        randomised: bool = False,
        seed: int | None = None,
    ) -> np.ndarray:
        if method == "identity":
            return images.astype(np.float64)
        return super().maps(method, images, targets, randomised=randomised, seed=seed)


def _trained_tiny_model(size: int = 24) -> tuple[Explainer, np.ndarray, np.ndarray, np.ndarray]:
    """A small CNN trained to read a bright square's position (the 'expression region')."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 240
    labels = np.arange(n) % 2
    images = rng.normal(90, 25, (n, size, size)).clip(0, 255)
    masks = np.zeros((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        top = 2 if label == 0 else size - 10
        masks[i, top : top + 8, 8:16] = True
        images[i][masks[i]] += 120
    model = _model("emotion_cnn_s", 2, size, 16)
    pre = _pre(size)
    x = pre.finish(torch.as_tensor(images / 255.0, dtype=torch.float32)[:, None])
    y = torch.as_tensor(labels)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(3):
        for idx in torch.randperm(n).split(32):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    torch.manual_seed(1)
    twin = _model("emotion_cnn_s", 2, size, 16)
    cfg = section("explain", target_layer="backbone.stages.2", curve_steps=10)
    ex = IdentityExplainer(model, twin, pre, images[:4], cfg)
    return ex, images[:16], labels[:16], masks[:16]


def test_gradcam_passes_sanity_and_localises_while_a_broken_method_fails() -> None:
    ex, images, labels, masks = _trained_tiny_model()
    probs = ex.probabilities(ex.model)(images)
    assert (probs.argmax(1) == labels).mean() == 1.0
    targets, others = probs.argmax(1), 1 - probs.argmax(1)
    none = np.arange(0)
    regions = ProbeRegions("dataset", np.arange(len(masks)), masks, none, masks[:0] * 0, none)
    _, gradcam = evaluate_method(ex, "gradcam", images, targets, others, regions)
    _, random = evaluate_method(ex, "random", images, targets, others, regions)
    _, broken = evaluate_method(ex, "identity", images, targets, others, regions)
    assert gradcam["sanity"]["passed"]
    assert not broken["sanity"]["passed"]
    assert broken["sanity"]["rank_corr_vs_random_weights"] == pytest.approx(1.0)
    assert gradcam["localisation"]["energy_in_mask"] > 2 * random["localisation"]["energy_in_mask"]
    assert gradcam["localisation"]["pointing_game"] > random["localisation"]["pointing_game"]
    assert gradcam["deletion_auc"] < random["deletion_auc"]


def test_localisation_scores() -> None:
    masks = np.zeros((2, 10, 10), dtype=bool)
    masks[:, 2:4, 2:4] = True
    perfect = checks.localisation(masks.astype(float), masks)
    assert perfect == {"energy_in_mask": 1.0, "pointing_game": 1.0, "mask_fraction": 0.04}
    uniform = checks.localisation(np.ones((2, 10, 10)), masks)
    assert uniform["energy_in_mask"] == pytest.approx(0.04)


def test_deletion_and_insertion_reward_faithful_maps() -> None:
    region = np.zeros((12, 12), dtype=bool)
    region[3:6, 3:6] = True

    def prob(batch: np.ndarray) -> np.ndarray:  # confidence = brightness of the region
        p = np.clip(batch[:, region].mean(1) / 255.0, 0, 1)
        return np.stack([p, 1 - p], axis=1)

    images = np.full((1, 12, 12), 20.0)
    images[0][region] = 250.0
    good, bad = region[None].astype(float), (~region)[None].astype(float)
    good_del, good_ins = checks.deletion_insertion(prob, images, good, np.array([0]), steps=12)
    bad_del, bad_ins = checks.deletion_insertion(prob, images, bad, np.array([0]), steps=12)
    assert good_del < bad_del
    assert good_ins > bad_ins


def test_region_ablation_separates_used_regions_from_random_pixels() -> None:
    region = np.zeros((8, 8), dtype=bool)
    region[2:4, 2:4] = True
    images = np.full((4, 8, 8), 10.0)
    images[:2][:, region] = 200.0
    labels = np.array([0, 0, 1, 1])

    def prob(batch: np.ndarray) -> np.ndarray:
        bright = batch[:, region].mean(1) > 100
        return np.stack([bright, ~bright], axis=1).astype(float)

    out = checks.region_ablation(prob, images, np.stack([region] * 4), labels)
    assert out["accuracy_intact"] == 1.0
    assert out["accuracy_regions_removed"] == 0.5
    assert out["accuracy_random_pixels_removed"] >= out["accuracy_regions_removed"]


def test_probe_selection_is_balanced_and_includes_mistakes() -> None:
    labels = np.repeat(np.arange(3), 10)
    predicted = labels.copy()
    predicted[[0, 1, 10]] = 2
    rows = select_probes(labels, predicted, 3, 6, seed=0)
    assert np.bincount(labels[rows]).tolist() == [6, 6, 6]
    assert (predicted[rows] != labels[rows]).sum() == 3
    assert (rows == select_probes(labels, predicted, 3, 6, seed=0)).all()


@pytest.mark.slow
def test_demo_pipeline_explanations_localise_and_pass_sanity() -> None:
    """Reads the demo pipeline's own output: the committed reports and the regions stage's
    DVC-tracked table, so it runs after `make repro` (as CI runs the slow tier)."""
    regions_table = REPO / "data/processed/regions/test.csv"
    assert regions_table.is_file(), f"{regions_table} is missing: run `make repro` first"
    path = REPO / "reports" / "explain.json"
    metrics = json.loads(path.read_text())
    gradcam, random = metrics["methods"]["gradcam"], metrics["random_baseline"]
    assert gradcam["sanity"]["passed"]
    assert gradcam["localisation"]["energy_in_mask"] > random["localisation"]["energy_in_mask"]
    assert gradcam["localisation"]["pointing_game"] > random["localisation"]["pointing_game"]
    ablation = metrics["region_ablation"]
    assert ablation["accuracy_regions_removed"] < ablation["accuracy_random_pixels_removed"]
    assert set(metrics["methods"]) == {"gradcam", "gradcam_pp", "shap", "lime"}
    assert metrics["probe"]["masks"] == "dataset"  # the generator's masks
    patterns = metrics["patterns"]
    assert sorted(patterns["classes"]) == sorted(section("ingest").classes)
    assert set(patterns["matches"]) == {
        "gradcam",
        "gradcam_pp",
        "shap",
        "lime",
        "random",
        "ablation",
    }
    stored = pd.read_csv(regions_table).set_index("path")
    assert not stored.loc[metrics["probe"]["face_mesh_unfit"] or [], "fitted"].any()
    assert (
        sum(e["probes"] for e in patterns["classes"].values())
        == metrics["probe"]["face_mesh_fitted"]
    )
    regions = json.loads((REPO / "reports/regions.json").read_text())
    check = regions["vs_source_masks"]
    for name in ("brows", "eyes", "mouth"):
        assert check["iou"][name] > 1.4 * check["iou_other_face"][name], name


def test_every_configurable_method_is_registered_by_name() -> None:
    """``explain.methods`` accepts exactly the registered methods (plus the random baseline)."""
    assert set(typing.get_args(ExplainMethod)) == set(methods.REGISTRY) - {"random"}
    with pytest.raises(ValueError, match="unknown explanation method 'nope'"):
        _explainer("emotion_cnn_s").maps("nope", np.zeros((1, 32, 32)), np.array([0]))
