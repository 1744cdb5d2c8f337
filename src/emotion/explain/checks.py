"""Quantitative checks of saliency maps: faithfulness, sanity, stability, class sensitivity,
localisation against ground-truth expression masks, and region ablation.

All functions take maps and images as numpy arrays (N, H, W) at the same resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter
from scipy.stats import spearmanr

ProbFn = Callable[[np.ndarray], np.ndarray]  # uint8-range float images (B, H, W) -> probs (B, C)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two maps (0 when either map is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def mean_rank_correlation(maps_a: np.ndarray, maps_b: np.ndarray) -> float:
    """Mean per-image Spearman correlation."""
    return float(np.mean([rank_correlation(a, b) for a, b in zip(maps_a, maps_b, strict=True)]))


def _order(saliency: np.ndarray, seed: int) -> np.ndarray:
    """Pixels from most to least salient; ties broken by seeded jitter (no flat plateaus)."""
    jitter = np.random.default_rng(seed).random(saliency.shape) * 1e-9
    return np.argsort(-(saliency + jitter).ravel(), kind="stable")


def deletion_insertion(
    prob: ProbFn,
    images: np.ndarray,
    maps: np.ndarray,
    targets: np.ndarray,
    steps: int = 20,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean deletion and insertion AUC of the target-class probability.

    Deletion replaces the most salient pixels first with the image mean (faithful maps make the
    probability drop fast: low AUC); insertion reveals them first on a blurred copy (faithful
    maps make it rise fast: high AUC).
    """
    fractions = np.linspace(0.0, 1.0, steps + 1)
    deletion, insertion = [], []
    for image, saliency, target in zip(images, maps, targets, strict=True):
        order = _order(saliency, seed)
        counts = (fractions * order.size).astype(int)
        flat, mean, blurred = image.ravel(), image.mean(), gaussian_filter(image, 4.0).ravel()
        deleted, inserted = [], []
        for k in counts:
            d = flat.copy()
            d[order[:k]] = mean
            i = blurred.copy()
            i[order[:k]] = flat[order[:k]]
            deleted.append(d.reshape(image.shape))
            inserted.append(i.reshape(image.shape))
        p = prob(np.stack(deleted + inserted))[:, target]
        deletion.append(np.trapezoid(p[: len(counts)], fractions))
        insertion.append(np.trapezoid(p[len(counts) :], fractions))
    return float(np.mean(deletion)), float(np.mean(insertion))


def localisation(maps: np.ndarray, masks: np.ndarray, tolerance: int = 1) -> dict[str, float]:
    """Saliency energy inside the expression regions and pointing-game hits.

    ``masks`` are boolean (N, H, W). The pointing game counts a hit when the map's maximum
    falls in the mask dilated by ``tolerance`` pixels. ``mask_fraction`` is what a uniform map
    would score on energy.
    """
    energy, hits = [], []
    for saliency, mask in zip(maps, masks, strict=True):
        s = np.clip(saliency, 0, None)
        total = s.sum()
        energy.append(float((s * mask).sum() / total) if total > 0 else float(mask.mean()))
        peak = np.unravel_index(np.argmax(s), s.shape)
        hits.append(
            bool(binary_dilation(mask, iterations=tolerance)[peak])
            if tolerance
            else bool(mask[peak])
        )
    return {
        "energy_in_mask": float(np.mean(energy)),
        "pointing_game": float(np.mean(hits)),
        "mask_fraction": float(np.mean([m.mean() for m in masks])),
    }


def region_ablation(
    prob: ProbFn, images: np.ndarray, masks: np.ndarray, labels: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """Accuracy with the expression regions blanked vs the same area blanked at random.

    Localisation scores only mean something if the model really uses the masked regions: its
    accuracy should collapse when they are removed, far more than for random pixels.
    """
    rng = np.random.default_rng(seed)
    blank_regions, blank_random = [], []
    for image, mask in zip(images, masks, strict=True):
        fill = image.mean()
        a = image.copy()
        a[mask] = fill
        b = image.copy()
        idx = rng.choice(image.size, size=int(mask.sum()), replace=False)
        b.ravel()[idx] = fill
        blank_regions.append(a)
        blank_random.append(b)
    acc = lambda batch: float((prob(np.stack(batch)).argmax(1) == labels).mean())  # noqa: E731
    return {
        "accuracy_intact": acc(list(images)),
        "accuracy_regions_removed": acc(blank_regions),
        "accuracy_random_pixels_removed": acc(blank_random),
    }
