"""Extra labelled image sets (``evaluate.extra_sets``): generalisation beyond the test split.

A set is a class-folder tree or a FER2013-style CSV, read with the ingest stage's own scanning,
label aliasing and verification (a corrupt file stops the stage and is named; unknown labels are
named with the keys that map or drop them). Images are brought to the model's stored size the way
the balance stage stores training images, then scored with the served test-time pipeline. Classes
a set lacks are absent from its metrics.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score

from emotion.core.errors import DataError
from emotion.data.decode import load_images
from emotion.data.ingest import ingest
from emotion.data.labels import LabelMap
from emotion.training.tensordata import TensorSplit

#: ingest's advice that does not apply here: extra sets are always verified strictly
QUARANTINE_HINT = ", or set ingest.on_corrupt: skip to quarantine them (listed in quarantine.csv)"


def set_name(entry: str) -> str:
    """The metrics key of a set: its folder name (or CSV file stem)."""
    return Path(entry).stem


def load_extra_set(
    source: Path, labels: LabelMap, source_size: int, root: Path, workers: int
) -> TensorSplit:
    """Verify and decode one set into a :class:`TensorSplit` at ``source_size``."""
    with tempfile.TemporaryDirectory(prefix="extra-set-") as scratch:
        try:
            found = ingest(
                source,
                labels,
                on_corrupt="fail",
                scratch=Path(scratch),
                root=root,
                workers=workers,
            )
        except DataError as exc:
            reason = str(exc).removeprefix("ingest.source: ").replace(QUARANTINE_HINT, "")
            raise DataError(f"evaluate.extra_sets '{source}': {reason}") from None
        frame = found.manifest[["path", "label"]].reset_index(drop=True)
        images, _ = load_images([str(root / p) for p in frame["path"]], source_size, workers)
    index = {c: i for i, c in enumerate(labels.classes)}
    y = torch.tensor([index[c] for c in frame["label"]], dtype=torch.int64)
    return TensorSplit(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), y, frame)


def extra_set_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and recall over the classes present; confusion (actual -> predicted)."""
    y_pred = probs.argmax(1)
    present = sorted(set(y_true.tolist()))
    recall = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    counts = pd.crosstab(
        pd.Categorical(np.array(classes)[y_true], categories=classes),
        pd.Categorical(np.array(classes)[y_pred], categories=classes),
        dropna=False,
    )
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), 6
        ),
        "recall": {classes[c]: round(float(r), 6) for c, r in zip(present, recall, strict=True)},
        "confusion": {
            classes[c]: {p: int(counts.loc[classes[c], p]) for p in classes} for c in present
        },
    }
