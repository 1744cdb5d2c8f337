"""Sharpness-aware minimisation (SAM, Foret et al., ICLR 2021) around any base optimiser.

SAM takes each step with the gradient at the worst nearby weights, ``w + rho * g / ||g||``, which
favours flat minima. :class:`SharpnessAwareAscent` owns only that ascent: it moves the weights
there from the gradient of the first pass and later restores them bit for bit, so the base
optimiser (and gradient clipping, the EMA and the schedule) then steps from ``w`` with the second
pass's gradient exactly as without SAM. Each step costs two forward-backward passes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["SharpnessAwareAscent", "frozen_norm_statistics"]


class SharpnessAwareAscent:
    """The ascent step of SAM over the parameters that have a gradient."""

    def __init__(self, params: list[nn.Parameter], rho: float) -> None:
        if rho <= 0:
            raise ValueError(f"SAM needs rho > 0, got {rho}")
        self.params, self.rho = params, rho
        self._saved: list[tuple[nn.Parameter, torch.Tensor]] = []

    @torch.no_grad()
    def ascend(self) -> bool:
        """Move to ``w + rho * g / ||g||``; False if g is 0 or not finite (an fp16 overflow step
        the scaler will skip), leaving the weights as they are. The direction is the same for
        scaled (AMP) and unscaled gradients, so this runs before ``GradScaler.unscale_``."""
        with_grad = [p for p in self.params if p.grad is not None]
        if not with_grad:
            return False
        grads = [p.grad for p in with_grad]
        norm = float(torch.nn.utils.get_total_norm(grads))
        if not (norm > 0 and math.isfinite(norm)):
            return False
        self._saved = [(p, p.detach().clone()) for p in with_grad]
        torch._foreach_add_(with_grad, grads, alpha=self.rho / norm)
        return True

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the weights :meth:`ascend` moved (exact copies, not a subtraction)."""
        for p, saved in self._saved:
            p.copy_(saved)
        self._saved = []


@contextmanager
def frozen_norm_statistics(model: nn.Module) -> Iterator[None]:
    """Batch-norm running statistics stay as they are (SAM's second pass must not count twice)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = {m: m.momentum for m in norms}
    counters = {m: n.clone() for m in norms if (n := m.num_batches_tracked) is not None}
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, count in counters.items():
            m.num_batches_tracked.copy_(count)
