"""The fast data path: a uint8 tensor cache per split, batched augmentation and preprocessing.

Each packed split (``<split>.npy``) is loaded once into a ``(N, 1, H, W)`` uint8 tensor (48x48
FER-sized data is ~2 KB per image). Batches are index slices of that tensor, moved to the device,
augmented with batched tensor ops (flip, affine warp, brightness/contrast, timm RandomErasing) and
resized/normalised on the device. No per-sample Python, no PIL, no worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812
from timm.data.random_erasing import RandomErasing

from emotion.core.errors import DataError
from emotion.data.packed import load_array
from emotion.training.params import TrainParams
from emotion.vision.preprocessing import PreprocessingContract

if TYPE_CHECKING:  # annotations only: stages that import this module do not depend on it
    from emotion.vision.tta import TestTimeAugmentation


@dataclass
class TensorSplit:
    """One split as tensors: ``images`` uint8 (N, 1, H, W), ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    frame: pd.DataFrame

    @classmethod
    def load(cls, folder: Path, split: str, classes: Sequence[str]) -> TensorSplit:
        """Load ``<folder>/<split>.npy`` and its CSV manifest."""
        array = np.ascontiguousarray(load_array(folder / f"{split}.npy", mmap=False))
        frame = pd.read_csv(folder / f"{split}.csv", keep_default_na=False)
        if len(frame) != len(array):
            raise DataError(
                f"{folder}/{split}.csv has {len(frame)} rows but {split}.npy has"
                f" {len(array)} images; rerun the balance stage"
            )
        unknown = sorted(set(frame["label"]) - set(classes))
        if unknown:
            raise DataError(
                f"{folder}/{split}.csv has labels {unknown} not in the class list {list(classes)}"
            )
        labels = torch.tensor([list(classes).index(x) for x in frame["label"]], dtype=torch.int64)
        return cls(torch.from_numpy(array).unsqueeze(1), labels, frame)

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self, num_classes: int) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=num_classes)


class BatchAugment:
    """Batched augmentation of float images in [0, 1], shape (B, C, H, W), on their device."""

    def __init__(self, params: TrainParams) -> None:
        self.params = params
        self._erase = (
            RandomErasing(params.aug_erasing_prob, mode="pixel", device="cpu")
            if params.aug_erasing_prob > 0
            else None
        )

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b = x.shape[0]

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(b, generator=gen, device=gen.device).to(x.device) * (hi - lo) + lo

        p = self.params
        flip = uniform(0, 1) < p.aug_hflip
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        angle = uniform(-p.aug_rotation_deg, p.aug_rotation_deg) * math.pi / 180
        scale = uniform(*p.aug_scale)
        tx, ty = (uniform(-p.aug_translate, p.aug_translate) * 2 for _ in range(2))
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        bright = uniform(1 - p.aug_brightness, 1 + p.aug_brightness)[:, None, None, None]
        contrast = uniform(1 - p.aug_contrast, 1 + p.aug_contrast)[:, None, None, None]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean) * bright
        return x.clamp_(0.0, 1.0)

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """timm RandomErasing on a normalised batch (uses Python's ``random``; seed per epoch)."""
        if self._erase is None:
            return x
        self._erase.device = x.device
        return self._erase(x)


class Preprocess:
    """The preprocessing contract on tensors: uint8 (B, 1, H, W) -> (B, in_chans, size, size).

    The torch twin of :meth:`PreprocessingContract.batch` (parity is tested at every size pair
    the profiles use); runs on the training device.
    """

    def __init__(self, contract: PreprocessingContract) -> None:
        self.contract = contract
        self.size = contract.image_size
        self.in_chans = contract.in_chans
        self.mean = torch.tensor(contract.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(contract.std, dtype=torch.float32).view(1, -1, 1, 1)

    def to_float(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        return images.to(device, non_blocking=True).float().div_(255.0)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
            )
        if self.in_chans != x.shape[1]:
            x = x.expand(-1, self.in_chans, -1, -1)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __call__(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        return self.finish(self.to_float(images, device))

    def views(
        self, images: torch.Tensor, device: torch.device, tta: TestTimeAugmentation
    ) -> torch.Tensor:
        """uint8 (B, 1, S, S) -> (B, views, in_chans, size, size): the contract's TTA views."""
        x = self.to_float(images, device)
        crops = []
        for top, left, side in tta.boxes(x.shape[-1]):
            crop = x[..., top : top + side, left : left + side]
            crops.append(self.finish(crop))
            if tta.mirrored:
                crops.append(self.finish(crop.flip(-1)))
        return torch.stack(crops, dim=1)


def epoch_batches(
    n: int,
    batch_size: int,
    gen: torch.Generator,
    *,
    shuffle: bool,
    drop_last: bool,
    rank: int = 0,
    world: int = 1,
) -> Iterator[torch.Tensor]:
    """Index batches for one epoch; with ``world > 1`` each rank gets an equal, disjoint shard."""
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    if world > 1:
        per_rank = math.ceil(n / world)
        order = torch.cat([order, order[: per_rank * world - n]])[rank::world]
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Optimizer steps per epoch with ``drop_last``."""
    return math.ceil(n / world) // batch_size
