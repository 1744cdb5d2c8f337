"""Prediction over a tensor split and classification metrics (accuracy, F1, NLL, calibration)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from emotion.training.tensordata import Preprocess, TensorSplit, epoch_batches
from emotion.vision.calibration import probabilities
from emotion.vision.tta import TestTimeAugmentation


@torch.no_grad()
def view_logits(
    model: torch.nn.Module,
    split: TensorSplit,
    pre: Preprocess,
    device: torch.device,
    *,
    batch_size: int,
    tta: TestTimeAugmentation,
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Logits (N, views, classes), float64, in split order; ``batch_size`` images per pass."""
    was_training = model.training
    model.eval()
    out = []
    gen = torch.Generator()
    for idx in epoch_batches(len(split), batch_size, gen, shuffle=False, drop_last=False):
        x = pre.views(split.images[idx], device, tta)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(x.flatten(0, 1)).float()
        out.append(logits.view(*x.shape[:2], -1).cpu())
    model.train(was_training)
    if not out:
        return np.zeros((0, tta.views, 0))
    return torch.cat(out).numpy().astype(np.float64)


def predict(
    model: torch.nn.Module,
    split: TensorSplit,
    pre: Preprocess,
    device: torch.device,
    *,
    batch_size: int,
    tta: TestTimeAugmentation,
    temperature: float,
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Class probabilities (N, C): :func:`view_logits` through the calibrated softmax."""
    logits = view_logits(
        model, split, pre, device, batch_size=batch_size, tta=tta, autocast_dtype=autocast_dtype
    )
    return probabilities(logits, temperature)


def expected_calibration_error(
    y_true: np.ndarray, probs: np.ndarray, bins: int
) -> tuple[float, list[dict[str, float]]]:
    """ECE with equal-width confidence bins, and the reliability table behind it."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    table, ece = [], 0.0
    for lo, hi in pairwise(edges):
        inside = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        n = int(inside.sum())
        acc = float(correct[inside].mean()) if n else 0.0
        mean_conf = float(conf[inside].mean()) if n else 0.0
        ece += n / max(len(y_true), 1) * abs(acc - mean_conf)
        table.append(
            {
                "bin_lower": float(lo),
                "bin_upper": float(hi),
                "count": n,
                "accuracy": acc,
                "confidence": mean_conf,
            }
        )
    return float(ece), table


def top1_scores(y_true: np.ndarray, probs: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 of the top-1 predictions (rounded to 6 places)."""
    labels = list(range(num_classes))
    y_pred = probs.argmax(1)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 6
        ),
    }


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str], bins: int
) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, per-class P/R/F1/support, NLL and ECE (``bins`` bins)."""
    labels = list(range(len(classes)))
    y_pred = probs.argmax(1)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    ece, _ = expected_calibration_error(y_true, probs, bins)
    return {
        **top1_scores(y_true, probs, len(classes)),
        "weighted_f1": round(
            float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)), 6
        ),
        "nll": round(float(log_loss(y_true, np.clip(probs, 1e-12, 1.0), labels=labels)), 6),
        "ece": round(ece, 6),
        "per_class": {
            c: {
                "precision": round(float(p[i]), 6),
                "recall": round(float(r[i]), 6),
                "f1": round(float(f[i]), 6),
                "support": int(s[i]),
            }
            for i, c in enumerate(classes)
        },
        "n": len(y_true),
    }


def quick_scores(y_true: np.ndarray, probs: np.ndarray, num_classes: int) -> dict[str, float]:
    """Loss, accuracy and macro-F1 for per-epoch validation."""
    labels = list(range(num_classes))
    y_pred = probs.argmax(1)
    return {
        "loss": float(log_loss(y_true, np.clip(probs, 1e-12, 1.0), labels=labels)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
    }


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion counts (rows: actual, columns: predicted)."""
    return confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))
