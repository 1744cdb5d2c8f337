"""Logits -> calibrated probabilities: temperature scaling (Guo et al., 2017) and TTA averaging.

Every consumer turns the model's logits into probabilities with :func:`probabilities`: the
evaluate stage, the export stage's parity checks and the server. Torch-free: numpy, and scipy
only to fit the temperature (so the server does not need it).
"""

from __future__ import annotations

import numpy as np

#: Search interval of the fitted temperature (a factor of 100 either way from 1).
TEMPERATURE_BOUNDS = (0.01, 100.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(view_logits: np.ndarray, temperature: float) -> np.ndarray:
    """(N, views, classes) logits -> (N, classes): ``softmax(logits / T)`` per view, averaged."""
    if view_logits.ndim != 3:
        raise ValueError(f"expected (N, views, classes) logits, got shape {view_logits.shape}")
    return softmax(view_logits / temperature).mean(axis=1)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def fit_temperature(view_logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL of :func:`probabilities` on labelled logits.

    A bounded 1-D search over ``log T`` (the NLL of temperature scaling is smooth and, for one
    view, convex in ``1 / T``). Deterministic; needs at least one labelled image.
    """
    from scipy.optimize import minimize_scalar  # fitting only: serving needs no scipy

    if len(labels) == 0:
        raise ValueError("temperature scaling needs at least one labelled image")
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: nll(probabilities(view_logits, float(np.exp(log_t))), labels),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(result.x))
