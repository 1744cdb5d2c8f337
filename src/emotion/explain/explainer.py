"""Run every explanation method on a probe set and measure it against a random baseline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from emotion.explain import checks, methods
from emotion.explain.base import MapMethod, Subject, model_inputs
from emotion.explain.params import ExplainParams
from emotion.explain.patterns import ProbeRegions, ablation_drops, pattern_table
from emotion.training.tensordata import Preprocess


class Explainer:
    """Maps of one model (and a weight-randomised twin) for uint8-range images: every method is
    bound once per model, on first use, and kept."""

    def __init__(
        self,
        model: nn.Module,
        random_model: nn.Module,
        pre: Preprocess,
        background: np.ndarray,
        params: ExplainParams,
    ) -> None:
        self.model, self.random_model = model.eval(), random_model.eval()
        self.pre, self.params = pre, params
        self.background = self.inputs(background)
        self.subject = self._subject(self.model)
        self.random_subject = self._subject(self.random_model)
        self._bound: dict[tuple[str, bool], MapMethod] = {}

    def _subject(self, model: nn.Module) -> Subject:
        return Subject(model, self.pre, self.background, self.params.target_layer)

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        """Model inputs for images (B, H, W) with values 0-255."""
        return model_inputs(self.pre, images)

    def probabilities(self, model: nn.Module) -> checks.ProbFn:
        """``model``'s class probabilities (B, C) for images (B, H, W) with values 0-255."""
        return self._subject(model).probabilities

    @property
    def target_layer(self) -> str:
        """The dotted path of the layer the CAM methods explain (resolved once)."""
        return self.subject.layer.path

    def method(self, name: str, *, randomised: bool = False) -> MapMethod:
        """``name`` bound to the model (or its twin): built on first use, then kept."""
        key = (name, randomised)
        if key not in self._bound:
            subject = self.random_subject if randomised else self.subject
            self._bound[key] = methods.bind(name, subject, self.params)
        return self._bound[key]

    def maps(
        self,
        method: str,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        randomised: bool = False,
        seed: int | None = None,
    ) -> np.ndarray:
        """Maps (N, H, W) at the images' resolution for ``targets``; ``seed`` replaces
        ``explain.seed`` for this call."""
        raw = self.method(method, randomised=randomised).maps(images, targets, seed=seed)
        return _resize(raw, images.shape[1:])


def _resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if maps.shape[1:] == tuple(size):
        return maps
    t = torch.as_tensor(maps, dtype=torch.float32)[:, None]
    return (
        F.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0]
        .numpy()
        .astype(np.float64)
    )


def evaluate_method(
    ex: Explainer,
    method: str,
    images: np.ndarray,
    targets: np.ndarray,
    others: np.ndarray,
    regions: ProbeRegions,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Maps for ``method`` and every check: returns (maps, metrics)."""
    start = time.perf_counter()
    maps = ex.maps(method, images, targets)
    seconds = (time.perf_counter() - start) / len(images)
    prob = ex.probabilities(ex.model)
    deletion, insertion = checks.deletion_insertion(
        prob, images, maps, targets, ex.params.curve_steps, ex.params.seed
    )
    result: dict[str, Any] = {
        "seconds_per_image": round(seconds, 4),
        "deletion_auc": round(deletion, 4),
        "insertion_auc": round(insertion, 4),
        # insertion - deletion AUC: high when the map ranks first the pixels the model relies on
        "faithfulness": round(insertion - deletion, 4),
    }
    if method != "random":
        sanity = checks.mean_rank_correlation(
            maps, ex.maps(method, images, targets, randomised=True)
        )
        result["sanity"] = {
            "rank_corr_vs_random_weights": round(sanity, 4),
            "passed": bool(sanity < ex.params.sanity_threshold),
        }
        result["class_sensitivity_rank_corr"] = round(
            checks.mean_rank_correlation(maps, ex.maps(method, images, others)), 4
        )
        if method in methods.STOCHASTIC:
            repeat = ex.maps(method, images, targets, seed=ex.params.seed + 1)
            result["stability_rank_corr"] = round(checks.mean_rank_correlation(maps, repeat), 4)
    if len(regions.mask_rows):
        result["localisation"] = {
            k: round(v, 4)
            for k, v in checks.localisation(maps[regions.mask_rows], regions.masks).items()
        }
    return maps, result


def explain_all(
    ex: Explainer,
    images: np.ndarray,
    labels: np.ndarray,
    regions: ProbeRegions,
    classes: list[str],
    progress: Callable[[str], None] = lambda name: None,
) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray]:
    """Every configured method plus the random baseline, localisation and the region table.

    Returns (maps, metrics, probabilities).
    """
    probs = ex.probabilities(ex.model)(images)
    ranked = np.argsort(-probs, axis=1)
    targets, others = ranked[:, 0], ranked[:, 1]
    all_maps, metrics = {}, {}
    for method in (*ex.params.methods, "random"):
        progress(method)
        all_maps[method], metrics[method] = evaluate_method(
            ex, method, images, targets, others, regions
        )
    summary: dict[str, Any] = {
        "methods": {m: metrics[m] for m in ex.params.methods},
        "random_baseline": metrics["random"],
    }
    prob = ex.probabilities(ex.model)
    rows = regions.mask_rows
    if len(rows):
        summary["region_ablation"] = {
            k: round(v, 4)
            for k, v in checks.region_ablation(
                prob, images[rows], regions.masks, labels[rows], ex.params.seed
            ).items()
        }
    rows = regions.label_rows
    if len(rows):
        drops = ablation_drops(prob, images[rows], regions.labels, targets[rows], probs[rows])
        picked = {m: all_maps[m][rows] for m in (*ex.params.methods, "random")}
        summary["patterns"] = pattern_table(
            ex.params, classes, picked, drops, regions.labels, targets[rows]
        )
    return all_maps, summary, probs
