"""Region label masks of a split's faces, as the ``regions`` stage stores them, and the dataset's
own masks where the source has them (the demo generator's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from emotion.core.atomic import replace_dir
from emotion.core.errors import DataError


@dataclass(frozen=True)
class RegionSet:
    """Per image of a split: region labels ``(N, H, W)``, landmarks ``(N, 468, 2)``, mesh score."""

    paths: list[str]
    labels: np.ndarray
    points: np.ndarray
    scores: np.ndarray
    fitted: np.ndarray  #: bool (N,): the mesh's face score reached ``min_face_score``

    def save(self, folder: Path, split: str) -> None:
        """Write ``<split>.npz`` and ``<split>.csv`` (path, score, fitted) into ``folder``."""
        with replace_dir(folder) as tmp:
            np.savez_compressed(
                tmp / f"{split}.npz", labels=self.labels, points=self.points, scores=self.scores
            )
            pd.DataFrame(
                {"path": self.paths, "score": self.scores.round(6), "fitted": self.fitted}
            ).to_csv(tmp / f"{split}.csv", index=False)

    @classmethod
    def load(cls, folder: Path, split: str, paths: Sequence[str]) -> RegionSet:
        """Load a split's regions; ``paths`` (the split's manifest order) must match."""
        frame = pd.read_csv(folder / f"{split}.csv", keep_default_na=False)
        if frame["path"].tolist() != list(paths):
            raise DataError(
                f"{folder}/{split}.csv lists other images than the {split} split: "
                "rerun the regions stage (`dvc repro regions`)"
            )
        with np.load(folder / f"{split}.npz") as arrays:
            labels, points, scores = arrays["labels"], arrays["points"], arrays["scores"]
        if len(labels) != len(frame):
            raise DataError(
                f"{folder}/{split}.npz has {len(labels)} faces but {split}.csv {len(frame)}: "
                "rerun the regions stage (`dvc repro regions`)"
            )
        fitted = frame["fitted"].astype(str).str.lower().eq("true").to_numpy()
        return cls(frame["path"].tolist(), labels, points, scores, fitted)


def load_source_labels(
    frame: pd.DataFrame, rows: Sequence[int], size: tuple[int, int], root: Path
) -> np.ndarray | None:
    """The dataset's own region label masks (uint8) for ``rows``, or ``None`` if any is missing."""
    paths = frame["mask_path"].iloc[list(rows)] if "mask_path" in frame else pd.Series(dtype=str)
    if paths.empty or (paths == "").any():
        return None
    masks = []
    for path in paths:
        with Image.open(root / path) as im:
            mask = im.convert("L")
            if mask.size != (size[1], size[0]):
                mask = mask.resize((size[1], size[0]), Image.Resampling.NEAREST)
            masks.append(np.asarray(mask, dtype=np.uint8))
    return np.stack(masks)
