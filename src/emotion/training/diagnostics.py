"""Per-epoch training diagnostics: learning rates, per-block weight and gradient norms, weight
histograms.

Blocks are the backbone's top-level children that hold parameters (descending while a single
child holds all of them, so ``emotion_cnn_s`` gives its four conv stages) plus the head's layers
with parameters; parameters registered on the backbone itself (ViT tokens, ...) form
``backbone_other``. ``emotion_cnn_s`` has 7 blocks: ``backbone_stages_0`` .. ``_3``, ``head_0``
(Linear), ``head_2`` (LayerNorm), ``head_4`` (Linear).

Gradient norms are measured cheaply: after every optimiser step's backward pass (gradients
unscaled, before clipping) one fused norm per block is added to a running sum on the device; an
epoch's value is the mean over its steps, read once when the epoch ends (no host sync per step).
"""

from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn

from emotion.training.model import EmotionNet

HISTOGRAM_BINS = 40
Blocks = dict[str, list[nn.Parameter]]


def _with_params(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in module.named_children() if any(True for _ in m.parameters())]


def model_blocks(model: EmotionNet) -> Blocks:
    """The named blocks of ``model`` whose norms are logged, each with its parameters."""
    prefix, children = "backbone", _with_params(model.backbone)
    while len(children) == 1 and _with_params(children[0][1]):
        prefix, children = f"{prefix}_{children[0][0]}", _with_params(children[0][1])
    blocks = {f"{prefix}_{name}": list(m.parameters()) for name, m in children}
    own = list(model.backbone.parameters(recurse=False))
    if own:
        blocks["backbone_other"] = own
    for name, m in _with_params(model.head):
        blocks[f"head_{name}"] = list(m.parameters())
    return blocks


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.utils.get_total_norm([t.detach().float() for t in tensors])


def weight_norms(blocks: Blocks) -> dict[str, float]:
    """L2 norm of each block's parameters."""
    return {name: float(_norm(params)) for name, params in blocks.items()}


class GradNorms:
    """Per-block gradient L2 norms, averaged over the steps since :meth:`reset`.

    Steps whose gradients are not finite (fp16 overflow: the scaler skips them) are left out.
    """

    def __init__(self, blocks: Blocks) -> None:
        self.blocks = blocks
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor | float] = dict.fromkeys(self.blocks, 0.0)
        self.counts: dict[str, torch.Tensor | float] = dict.fromkeys(self.blocks, 0.0)

    def add(self) -> None:
        """Add the current gradients (call after backward, once per optimiser step)."""
        for name, params in self.blocks.items():
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                norm = _norm(grads)
                finite = torch.isfinite(norm)
                self.sums[name] = self.sums[name] + torch.where(finite, norm, 0.0)
                self.counts[name] = self.counts[name] + finite.float()

    def mean(self) -> dict[str, float]:
        """Mean norm per block (0 for a block without gradients, e.g. a frozen backbone)."""
        return {
            name: float(total) / max(float(self.counts[name]), 1.0)
            for name, total in self.sums.items()
        }


def weight_histograms(blocks: Blocks, bins: int = HISTOGRAM_BINS) -> dict[str, dict[str, Any]]:
    """Per block: its conv/linear weights (all parameters of a norm-only block) counted in
    ``bins`` equal bins over ``[-limit, limit]``, ``limit`` being their largest magnitude."""
    out = {}
    for name, params in blocks.items():
        weights = [p for p in params if p.ndim > 1] or params
        flat = torch.cat([p.detach().float().flatten().cpu() for p in weights])
        limit = max(float(flat.abs().max()), 1e-12)
        counts = torch.histc(flat, bins=bins, min=-limit, max=limit)
        out[name] = {"limit": limit, "counts": [int(c) for c in counts]}
    return out


def histogram_figure(histograms: dict[str, dict[str, Any]], epoch: int) -> Figure:
    """Small multiples of :func:`weight_histograms` (log counts), one panel per block."""
    cols = min(4, len(histograms))
    rows = -(-len(histograms) // cols)
    fig = Figure(figsize=(2.6 * cols, 1.9 * rows + 0.5), dpi=72)
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax, (name, hist) in zip(axes, histograms.items(), strict=False):
        edges = torch.linspace(-hist["limit"], hist["limit"], len(hist["counts"]) + 1)
        ax.stairs(hist["counts"], edges.numpy(), fill=True, color="#2f6fb0")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[len(histograms) :]:
        ax.set_axis_off()
    fig.suptitle(f"Weight distribution per block, epoch {epoch}", fontsize=9)
    fig.tight_layout()
    return fig
