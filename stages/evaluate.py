"""DVC stage ``evaluate``: test-split metrics, confusion matrix, calibration and predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from emotion.atomic import write_json, write_text
from emotion.config import load_sections
from emotion.evaluation import (
    classification_metrics,
    confusion,
    expected_calibration_error,
    predict,
)
from emotion.manifest import to_csv_text
from emotion.model import load_trained
from emotion.params.evaluate import EvaluateParams
from emotion.plots import confusion_heatmap, reliability_diagram
from emotion.stage import log, run_stage, worker_count
from emotion.tensordata import Preprocess, TensorSplit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--model", required=True, type=Path, help="best_model.pth")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    parser.add_argument("--predictions", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, evaluate=EvaluateParams).evaluate
    torch.set_num_threads(worker_count())
    trained = load_trained(args.model)
    model, classes, prep = trained.model, trained.classes, trained.preprocessing
    pre = Preprocess(prep["image_size"], prep["in_chans"], prep["mean"], prep["std"])
    test = TensorSplit.load(args.data, "test", classes)
    probs = predict(model, test, pre, torch.device("cpu"), p.batch_size, p.tta_flip)
    y_true = test.labels.numpy()
    y_pred = probs.argmax(1)

    metrics = classification_metrics(y_true, probs, classes, p.calibration_bins)
    metrics["tta_flip"] = p.tta_flip
    write_json(args.metrics, metrics)
    names = np.array(classes)
    write_text(
        args.plots / "confusion.csv",
        to_csv_text(pd.DataFrame({"actual": names[y_true], "predicted": names[y_pred]})),
    )
    confusion_heatmap(
        confusion(y_true, y_pred, len(classes)), classes, args.plots / "confusion_normalized.png"
    )
    _, bins = expected_calibration_error(y_true, probs, p.calibration_bins)
    write_text(args.plots / "reliability.csv", to_csv_text(pd.DataFrame(bins)))
    reliability_diagram(pd.DataFrame(bins), metrics["ece"], args.plots / "reliability.png")
    predictions = test.frame[["path", "label"]].copy()
    predictions["predicted"] = names[y_pred]
    predictions["confidence"] = probs.max(1).round(6)
    predictions["correct"] = y_pred == y_true
    for i, c in enumerate(classes):
        predictions[f"p_{c}"] = probs[:, i].round(6)
    write_text(args.predictions, to_csv_text(predictions))
    log.info(
        "test accuracy %.4f, macro-F1 %.4f, ECE %.4f on %d images",
        metrics["accuracy"],
        metrics["macro_f1"],
        metrics["ece"],
        metrics["n"],
    )


if __name__ == "__main__":
    run_stage(main)
