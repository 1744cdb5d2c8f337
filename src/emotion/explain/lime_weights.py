"""LIME superpixel weights bound to a model's probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import numpy as np
from lime import lime_image
from lime.wrappers.scikit_image import SegmentationAlgorithm

from emotion.explain.base import MapMethod, Subject
from emotion.explain.params import ExplainParams


def lime_maps(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    targets: Sequence[int],
    samples: int = 300,
    segments: int = 30,
    seed: int = 0,
) -> np.ndarray:
    """LIME superpixel weights painted back onto the pixels (positive part).

    ``images`` are 2-D grayscale floats in [0, 1]; LIME turns them into RGB, so
    ``predict_proba`` receives (n, H, W, 3) and should use one channel.
    """
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    segmenter = SegmentationAlgorithm(
        "slic", n_segments=segments, compactness=0.1, sigma=0.5, start_label=0, channel_axis=-1
    )
    out = np.zeros(images.shape, dtype=np.float64)
    for i, (image, target) in enumerate(zip(images, targets, strict=True)):
        exp = explainer.explain_instance(
            image.astype(np.float64),
            predict_proba,
            labels=(int(target),),
            top_labels=None,
            num_samples=samples,
            batch_size=100,
            segmentation_fn=segmenter,
            random_seed=seed,
        )
        weights = np.zeros(exp.segments.max() + 1)
        for segment, weight in exp.local_exp[int(target)]:
            weights[segment] = max(weight, 0.0)
        out[i] = weights[exp.segments]
    return out


class LimeMethod(MapMethod):
    """LIME on SLIC superpixels with the subject's probabilities; at the images' resolution."""

    stochastic = True

    def __init__(self, subject: Subject, samples: int, segments: int, seed: int) -> None:
        self.subject, self.samples, self.segments, self.seed = subject, samples, segments, seed

    @classmethod
    def bind(cls, subject: Subject, params: ExplainParams) -> Self:
        """Bound with ``explain.lime_samples``, ``explain.lime_segments`` and ``explain.seed``."""
        return cls(subject, params.lime_samples, params.lime_segments, params.seed)

    def maps(
        self, images: np.ndarray, targets: np.ndarray, *, seed: int | None = None
    ) -> np.ndarray:
        """LIME maps; the explainer is seeded afresh on every call."""
        return lime_maps(
            lambda rgb: self.subject.probabilities(rgb[..., 0] * 255.0),
            images / 255.0,
            targets,
            self.samples,
            self.segments,
            self.seed if seed is None else seed,
        )
