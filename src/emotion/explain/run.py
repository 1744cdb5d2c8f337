"""Run every explanation method on a probe set and measure it against a random baseline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from emotion.explain import checks, methods
from emotion.tensordata import Preprocess

METHODS = ("gradcam", "gradcam_pp", "shap", "lime")
STOCHASTIC = {"shap", "lime"}


@dataclass(frozen=True)
class ExplainConfig:
    """The ``explain`` params that shape the computation."""

    methods: tuple[str, ...] = METHODS
    target_layer: str = "auto"
    seed: int = 0
    shap_nsamples: int = 50
    lime_samples: int = 300
    lime_segments: int = 30
    curve_steps: int = 20
    sanity_threshold: float = 0.5


class Explainer:
    """Computes maps of one model (and a weight-randomised twin) for uint8-range images."""

    def __init__(
        self,
        model: nn.Module,
        random_model: nn.Module,
        pre: Preprocess,
        background: np.ndarray,
        cfg: ExplainConfig,
    ) -> None:
        self.model, self.random_model, self.pre, self.cfg = (
            model.eval(),
            random_model.eval(),
            pre,
            cfg,
        )
        self.background = self.inputs(background)

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        """Model inputs for images (B, H, W) with values 0-255."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32) / 255.0)[:, None]
        return self.pre.finish(x)

    def probabilities(self, model: nn.Module) -> checks.ProbFn:
        @torch.no_grad()
        def prob(images: np.ndarray) -> np.ndarray:
            out = [
                model(self.inputs(images[i : i + 256])).softmax(-1).numpy()
                for i in range(0, len(images), 256)
            ]
            return np.concatenate(out).astype(np.float64)

        return prob

    def maps(
        self,
        method: str,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        randomised: bool = False,
        seed: int | None = None,
    ) -> np.ndarray:
        """Maps (N, H, W) at the images' resolution for ``targets``."""
        model = self.random_model if randomised else self.model
        seed = self.cfg.seed if seed is None else seed
        x = self.inputs(images)
        if method == "gradcam":
            raw = methods.gradcam(model, x, targets, self.cfg.target_layer)
        elif method == "gradcam_pp":
            raw = methods.gradcam_pp(model, x, targets, self.cfg.target_layer)
        elif method == "shap":
            torch.manual_seed(seed)
            raw = methods.shap_gradient(
                model, x, targets, self.background, self.cfg.shap_nsamples, seed
            )
        elif method == "lime":
            prob = self.probabilities(model)
            raw = methods.lime_maps(
                lambda rgb: prob(rgb[..., 0] * 255.0),
                images / 255.0,
                targets,
                self.cfg.lime_samples,
                self.cfg.lime_segments,
                seed,
            )
        elif method == "random":
            raw = methods.random_maps((len(images), *images.shape[1:]), seed)
        else:
            raise ValueError(
                f"unknown explanation method {method!r}; known: {[*METHODS, 'random']}"
            )
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
    masks: np.ndarray | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Maps for ``method`` and every check: returns (maps, metrics)."""
    start = time.perf_counter()
    maps = ex.maps(method, images, targets)
    seconds = (time.perf_counter() - start) / len(images)
    prob = ex.probabilities(ex.model)
    deletion, insertion = checks.deletion_insertion(
        prob, images, maps, targets, ex.cfg.curve_steps, ex.cfg.seed
    )
    result: dict[str, Any] = {
        "seconds_per_image": round(seconds, 4),
        "deletion_auc": round(deletion, 4),
        "insertion_auc": round(insertion, 4),
    }
    if method != "random":
        sanity = checks.mean_rank_correlation(
            maps, ex.maps(method, images, targets, randomised=True)
        )
        result["sanity"] = {
            "rank_corr_vs_random_weights": round(sanity, 4),
            "passed": bool(sanity < ex.cfg.sanity_threshold),
        }
        result["class_sensitivity_rank_corr"] = round(
            checks.mean_rank_correlation(maps, ex.maps(method, images, others)), 4
        )
        if method in STOCHASTIC:
            repeat = ex.maps(method, images, targets, seed=ex.cfg.seed + 1)
            result["stability_rank_corr"] = round(checks.mean_rank_correlation(maps, repeat), 4)
    if masks is not None:
        result["localisation"] = {
            k: round(v, 4) for k, v in checks.localisation(maps, masks).items()
        }
    return maps, result


def explain_all(
    ex: Explainer,
    images: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray | None,
    progress: Callable[[str], None] = lambda name: None,
) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray]:
    """Every configured method plus the random baseline; returns (maps, metrics, probabilities)."""
    probs = ex.probabilities(ex.model)(images)
    ranked = np.argsort(-probs, axis=1)
    targets, others = ranked[:, 0], ranked[:, 1]
    all_maps, metrics = {}, {}
    for method in (*ex.cfg.methods, "random"):
        progress(method)
        all_maps[method], metrics[method] = evaluate_method(
            ex, method, images, targets, others, masks
        )
    summary: dict[str, Any] = {
        "methods": {m: metrics[m] for m in ex.cfg.methods},
        "random_baseline": metrics["random"],
    }
    if masks is not None:
        summary["region_ablation"] = {
            k: round(v, 4)
            for k, v in checks.region_ablation(
                ex.probabilities(ex.model), images, masks, labels, ex.cfg.seed
            ).items()
        }
    return all_maps, summary, probs
