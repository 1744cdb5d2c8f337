"""The DVC stage ``evaluate``: test-split metrics, confusion, calibration and predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from emotion.core.atomic import write_json, write_text
from emotion.core.plots import confusion_heatmap, reliability_diagram
from emotion.core.stage import log, worker_count
from emotion.data.manifest import to_csv_text
from emotion.training.evaluation import (
    classification_metrics,
    confusion,
    expected_calibration_error,
    predict,
)
from emotion.training.model import load_trained
from emotion.training.params import EvaluateParams
from emotion.training.tensordata import Preprocess, TensorSplit


def run_evaluate(
    params: EvaluateParams,
    *,
    data: Path,
    model: Path,
    metrics: Path,
    plots: Path,
    predictions: Path,
) -> dict[str, Any]:
    """Test-split metrics, confusion matrix, calibration and per-image predictions."""
    torch.set_num_threads(worker_count())
    trained = load_trained(model)
    classes = trained.classes
    test = TensorSplit.load(data, "test", classes)
    pre = Preprocess(trained.contract)
    probs = predict(
        trained.model,
        test,
        pre,
        torch.device("cpu"),
        batch_size=params.batch_size,
        tta_flip=params.tta_flip,
    )
    y_true, y_pred = test.labels.numpy(), probs.argmax(1)
    scores = classification_metrics(y_true, probs, classes, params.calibration_bins)
    scores["tta_flip"] = params.tta_flip
    write_json(metrics, scores)
    names = np.array(classes)
    pairs = pd.DataFrame({"actual": names[y_true], "predicted": names[y_pred]})
    write_text(plots / "confusion.csv", to_csv_text(pairs))
    matrix = confusion(y_true, y_pred, len(classes))
    confusion_heatmap(matrix, classes, plots / "confusion_normalized.png")
    _, bins = expected_calibration_error(y_true, probs, params.calibration_bins)
    write_text(plots / "reliability.csv", to_csv_text(pd.DataFrame(bins)))
    reliability_diagram(pd.DataFrame(bins), scores["ece"], plots / "reliability.png")
    write_text(predictions, to_csv_text(prediction_table(test.frame, probs, y_true, classes)))
    log.info(
        "test accuracy %.4f, macro-F1 %.4f, ECE %.4f on %d images",
        scores["accuracy"],
        scores["macro_f1"],
        scores["ece"],
        scores["n"],
    )
    return scores


def prediction_table(
    frame: pd.DataFrame, probs: np.ndarray, y_true: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """One row per test image: path, label, prediction, confidence, correctness, probabilities."""
    y_pred = probs.argmax(1)
    table = frame[["path", "label"]].copy()
    table["predicted"] = np.array(classes)[y_pred]
    table["confidence"] = probs.max(1).round(6)
    table["correct"] = y_pred == y_true
    for i, c in enumerate(classes):
        table[f"p_{c}"] = probs[:, i].round(6)
    return table
