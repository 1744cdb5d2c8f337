"""The random-saliency baseline every method is measured against."""

from __future__ import annotations

from typing import Self

import numpy as np

from emotion.explain.base import MapMethod, Subject
from emotion.explain.params import ExplainParams


def random_maps(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The random-saliency baseline: i.i.d. uniform maps."""
    return np.random.default_rng(seed).random(shape)


class RandomMethod(MapMethod):
    """I.i.d. uniform maps at the images' resolution; ignores the model."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    @classmethod
    def bind(cls, subject: Subject, params: ExplainParams) -> Self:
        """Bound with ``explain.seed``."""
        return cls(params.seed)

    def maps(
        self, images: np.ndarray, targets: np.ndarray, *, seed: int | None = None
    ) -> np.ndarray:
        """Uniform maps, one per image."""
        return random_maps((len(images), *images.shape[1:]), self.seed if seed is None else seed)
