"""Fast tensor data path vs a per-sample PIL DataLoader, same augmentations, same run.

Usage: python benchmarks/bench_train_datapath.py --data data/processed/balance [--batches 40]
       [--model emotion_cnn_s] [--image-size 48] [--workers 2]

1. Data path alone (augment + batch + normalise): images/s of the fast path (uint8 tensor cache,
   batched tensor augmentation) vs torchvision transforms on PIL images decoded per sample from
   PNG files by a DataLoader with worker processes (the original report's layout).
2. End to end: training images/s (forward + backward + AdamW step) fed by each path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from emotion.tools.params_file import load_section
from emotion.training.model import build_model, normalization
from emotion.training.params import TrainParams
from emotion.training.tensordata import (
    BatchAugment,
    Preprocess,
    TensorSplit,
    epoch_batches,
)
from emotion.training.trainer import autocast_dtype
from emotion.vision.preprocessing import PreprocessingContract


class PngFolder(Dataset):
    """Per-sample PIL decode + torchvision augmentation (the baseline)."""

    def __init__(self, paths: list[Path], labels: list[int], transform: v2.Compose) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("L")), self.labels[i]


def baseline_transform(
    aug: TrainParams, size: int, mean: list[float], std: list[float]
) -> v2.Compose:
    shift = (aug.aug_translate, aug.aug_translate)
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomHorizontalFlip(aug.aug_hflip),
            v2.RandomAffine(aug.aug_rotation_deg, translate=shift, scale=aug.aug_scale),
            v2.ColorJitter(brightness=aug.aug_brightness, contrast=aug.aug_contrast),
            v2.Resize((size, size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="emotion_cnn_s")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    classes = json.loads((args.data / "labels.json").read_text())["classes"]
    split = TensorSplit.load(args.data, "train", classes)
    aug = load_section("train")
    spec = load_section("model", name=args.model, in_chans=1, image_size=args.image_size)
    model = build_model(spec, len(classes))
    mean, std = normalization(model, 1)
    source = int(split.images.shape[-1])
    contract = PreprocessingContract(source, args.image_size, 1, tuple(mean), tuple(std), None)
    pre = Preprocess(contract)
    fast_aug = BatchAugment(aug)
    n_images = args.batches * args.batch_size

    def fast_batches():
        gen = torch.Generator().manual_seed(0)
        while True:
            for idx in epoch_batches(
                len(split), args.batch_size, gen, shuffle=True, drop_last=True
            ):
                x = pre.finish(fast_aug(pre.to_float(split.images[idx], torch.device("cpu")), gen))
                yield x, split.labels[idx]

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, image in enumerate(split.images[:, 0].numpy()):
            path = Path(tmp) / f"{i:06d}.png"
            Image.fromarray(image).save(path)
            paths.append(path)
        dataset = PngFolder(
            paths, split.labels.tolist(), baseline_transform(aug, args.image_size, mean, std)
        )
        loader = DataLoader(
            dataset,
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.workers,
            drop_last=True,
            persistent_workers=True,
        )

        def pil_batches():
            while True:
                yield from loader

        def data_only(batches) -> float:
            it = batches()
            next(it)  # warm-up (worker start-up)
            start = time.perf_counter()
            for _ in range(args.batches):
                next(it)
            return n_images / (time.perf_counter() - start)

        def train_steps(batches) -> float:
            net = build_model(spec, len(classes))
            opt = torch.optim.AdamW(net.parameters(), 1e-3)
            amp = autocast_dtype("auto", torch.device("cpu"))
            it = batches()
            for step in range(args.batches + 2):
                if step == 2:
                    start = time.perf_counter()
                x, y = next(it)
                with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                    loss = torch.nn.functional.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return n_images / (time.perf_counter() - start)

        rows = {
            "data path only": (data_only(pil_batches), data_only(fast_batches)),
            f"training ({args.model}, {args.image_size}px)": (
                train_steps(pil_batches),
                train_steps(fast_batches),
            ),
        }
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {cores} cores, torch {torch.__version__}")
    print(f"{len(split)} train images from {args.data}; batch {args.batch_size} x {args.batches}\n")
    print(f"| measure | PIL DataLoader ({args.workers} workers) | tensor path | speed-up |")
    print("|---|---:|---:|---:|")
    for name, (base, fast) in rows.items():
        print(f"| {name} | {base:,.0f} | {fast:,.0f} | {fast / base:.1f}x |")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
