"""Per-epoch training diagnostics: learning rates, per-block weight and gradient norms, weight
histograms (drawn over epochs by :func:`weight_distribution_figure`).

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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from emotion.training.model import EmotionNet

HISTOGRAM_BINS = 40
CMAP = "viridis"  #: colours of :func:`weight_distribution_figure`
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


def weight_distribution_figure(epochs: Sequence[Mapping[str, Mapping[str, Any]]]) -> Figure:
    """Each block's weight distribution over epochs: one heatmap panel per block (x: epoch,
    y: weight value, colour: share of the block's weights in each of :func:`weight_histograms`'
    bins, log scale, one colour bar for all panels; white: no weights).

    ``epochs`` holds one :func:`weight_histograms` result per epoch, epoch 1 first. Each epoch keeps
    its own bins (they span that epoch's largest magnitude), so no counts are re-binned.
    """
    blocks = list(epochs[0])
    cols = min(3, len(blocks))
    rows = -(-len(blocks) // cols)
    fig = Figure(figsize=(3.6 * cols, 2.5 * rows + 0.7), dpi=90, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    shares = {
        b: [np.asarray(e[b]["counts"], float) / sum(e[b]["counts"]) for e in epochs] for b in blocks
    }
    bins = len(shares[blocks[0]][0])
    smallest = min(float(s[s > 0].min()) for per in shares.values() for s in per)
    norm = LogNorm(vmin=min(smallest, 0.1), vmax=1.0)
    for i, block in enumerate(blocks):
        ax = axes.flat[i]
        limits = [float(e[block]["limit"]) for e in epochs]
        # columns 2k and 2k+1 are epoch k's left and right edges; the zero-width quads between
        # two epochs are masked, so each epoch is drawn with its own bin edges
        x = np.repeat(np.arange(1, len(epochs) + 1), 2) + np.tile([-0.5, 0.5], len(epochs))
        y = np.stack([np.linspace(-lim, lim, bins + 1) for lim in np.repeat(limits, 2)], axis=1)
        values = np.full((bins, 2 * len(epochs) - 1), np.nan)
        values[:, ::2] = np.stack(shares[block], axis=1)
        values[values == 0] = np.nan
        ax.pcolormesh(
            np.broadcast_to(x, y.shape), y, np.ma.masked_invalid(values), norm=norm, cmap=CMAP
        )
        ax.set_xlim(0.5, len(epochs) + 0.5)
        ax.set_ylim(-max(limits), max(limits))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_title(f"{block} ({sum(epochs[0][block]['counts']):,} weights)", fontsize=9)
        ax.tick_params(labelsize=7)
        if i % cols == 0:
            ax.set_ylabel("weight value", fontsize=8)
        if i >= len(blocks) - cols:
            ax.set_xlabel("epoch", fontsize=8)
    for ax in axes.flat[len(blocks) :]:
        ax.set_axis_off()
    bar = fig.colorbar(ScalarMappable(norm, CMAP), ax=axes, shrink=0.9)
    bar.set_label("share of the block's weights in the bin", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(
        f"Weight distribution per block over {len(epochs)} epoch{'s' if len(epochs) > 1 else ''}"
        f" ({bins} bins per epoch over ± its largest weight)",
        fontsize=10,
    )
    return fig
