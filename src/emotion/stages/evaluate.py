"""The DVC stage ``evaluate``: calibration, test-split metrics, extra sets and predictions.

1. Temperature scaling is fitted on the validation split (``evaluate.calibration``), for the
   test-time pipeline the served model runs (``evaluate.tta``); ``models/calibration.json``
   carries both to the export stage, so serving applies exactly what was measured here. The
   validation split's accuracy and macro-F1 under that pipeline are reported too.
2. The test split is scored with it: accuracy, F1, NLL and ECE, the latter two also before
   calibration, a confusion matrix, a reliability diagram of both and per-image predictions.
3. Each of ``evaluate.extra_sets`` is scored the same way (:mod:`emotion.training.extrasets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from emotion.core.atomic import write_json, write_text
from emotion.core.plots import confusion_heatmap, reliability_diagram
from emotion.core.results import write_results
from emotion.core.stage import log, worker_count
from emotion.data.labels import LabelMap
from emotion.data.manifest import to_csv_text
from emotion.data.params import IngestParams
from emotion.training.evaluation import (
    classification_metrics,
    confusion,
    expected_calibration_error,
    top1_scores,
    view_logits,
)
from emotion.training.extrasets import extra_set_metrics, load_extra_set, set_name
from emotion.training.model import TrainedModel, load_trained
from emotion.training.params import EvaluateParams
from emotion.training.tensordata import Preprocess, TensorSplit
from emotion.vision.calibration import fit_temperature, nll, probabilities
from emotion.vision.tta import TestTimeAugmentation

#: ``metrics/eval.json``: test accuracy, macro-F1 and calibration (the rest: ``reports/``).
HEADLINE = {"acc": "accuracy", "f1": "macro_f1", "ece": "ece", "nll": "nll"}


class Scorer:
    """The served test-time pipeline on tensor splits: TTA views, logits, calibrated softmax."""

    def __init__(self, trained: TrainedModel, params: EvaluateParams) -> None:
        self.trained, self.params = trained, params
        self.tta: TestTimeAugmentation = params.test_time_augmentation()
        self.pre = Preprocess(trained.contract)
        self.temperature = 1.0
        self.validation: dict[str, Any] = {}

    def logits(self, split: TensorSplit) -> np.ndarray:
        return view_logits(
            self.trained.model,
            split,
            self.pre,
            torch.device("cpu"),
            batch_size=self.params.batch_size,
            tta=self.tta,
        )

    def calibrate(self, val: TensorSplit) -> dict[str, Any]:
        """Fit the temperature on ``val`` (``evaluate.calibration``): ``calibration.json``."""
        logits, y = self.logits(val), val.labels.numpy()
        if self.params.calibration == "temperature":
            self.temperature = fit_temperature(logits, y)
        calibrated = probabilities(logits, self.temperature)
        self.validation = {"n": len(y), **top1_scores(y, calibrated, len(self.trained.classes))}
        return {
            "method": self.params.calibration,
            "temperature": round(self.temperature, 6),
            "tta": self.tta.to_dict(),
            "fitted_on": {
                "split": "val",
                "n": len(y),
                "nll_before": round(nll(probabilities(logits, 1.0), y), 6),
                "nll_after": round(nll(calibrated, y), 6),
            },
        }

    def probabilities(self, split: TensorSplit) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated, uncalibrated) probabilities of ``split``."""
        logits = self.logits(split)
        return probabilities(logits, self.temperature), probabilities(logits, 1.0)


def run_evaluate(
    params: EvaluateParams,
    ingest: IngestParams,
    *,
    data: Path,
    model: Path,
    calibration: Path,
    report: Path,
    metrics: Path,
    plots: Path,
    predictions: Path,
) -> dict[str, Any]:
    """Calibrate on validation, then score the test split and every extra set."""
    torch.set_num_threads(worker_count())
    trained = load_trained(model)
    classes = trained.classes
    scorer = Scorer(trained, params)
    fitted = scorer.calibrate(TensorSplit.load(data, "val", classes))
    write_json(calibration, fitted)
    test = TensorSplit.load(data, "test", classes)
    probs, raw = scorer.probabilities(test)
    y_true = test.labels.numpy()
    scores = classification_metrics(y_true, probs, classes, params.calibration_bins)
    scores["tta"] = scorer.tta.to_dict()
    scores["validation"] = scorer.validation
    scores["calibration"] = calibration_summary(fitted, y_true, probs, raw, params, plots)
    write_test_plots(y_true, probs, classes, plots)
    table = prediction_table(test.frame, probs, y_true, classes)
    write_text(predictions, to_csv_text(table, "%.6f"))
    labels = LabelMap(classes, ingest.aliases, ingest.drop)
    scores["extra_sets"] = score_extra_sets(scorer, params, labels, plots)
    rows = [{"class": c, **v} for c, v in scores["per_class"].items()]
    write_results(scores, rows, report_path=report, metrics_path=metrics, keys=HEADLINE)
    log.info(
        "test accuracy %.4f, macro-F1 %.4f; temperature %.3f: NLL %.4f -> %.4f, ECE %.4f -> %.4f",
        scores["accuracy"],
        scores["macro_f1"],
        scorer.temperature,
        scores["calibration"]["uncalibrated"]["nll"],
        scores["nll"],
        scores["calibration"]["uncalibrated"]["ece"],
        scores["ece"],
    )
    return scores


def calibration_summary(
    fitted: dict[str, Any],
    y_true: np.ndarray,
    probs: np.ndarray,
    raw: np.ndarray,
    params: EvaluateParams,
    plots: Path,
) -> dict[str, Any]:
    """Test NLL/ECE before and after calibration; reliability tables and diagram of both."""
    summary: dict[str, Any] = {
        "method": fitted["method"],
        "temperature": fitted["temperature"],
    }
    curves = {}
    for name, p, csv in (
        ("uncalibrated", raw, "reliability_uncalibrated.csv"),
        ("calibrated", probs, "reliability.csv"),
    ):
        ece, bins = expected_calibration_error(y_true, p, params.calibration_bins)
        summary[name] = {"nll": round(nll(p, y_true), 6), "ece": round(ece, 6)}
        write_text(plots / csv, to_csv_text(pd.DataFrame(bins)))
        curves[name] = (pd.DataFrame(bins), ece)
    reliability_diagram(curves, plots / "reliability.png")
    return summary


def write_test_plots(
    y_true: np.ndarray, probs: np.ndarray, classes: list[str], plots: Path
) -> None:
    """The test confusion matrix: DVC's (actual, predicted) pairs and a normalised heatmap."""
    y_pred, names = probs.argmax(1), np.array(classes)
    pairs = pd.DataFrame({"actual": names[y_true], "predicted": names[y_pred]})
    write_text(plots / "confusion.csv", to_csv_text(pairs))
    matrix = confusion(y_true, y_pred, len(classes))
    confusion_heatmap(matrix, classes, plots / "confusion_normalized.png")


def score_extra_sets(
    scorer: Scorer, params: EvaluateParams, labels: LabelMap, plots: Path
) -> dict[str, Any]:
    """Metrics per extra set, and ``extra_confusion.csv`` (actual as ``set/class``)."""
    results, pairs = {}, []
    names = np.array(labels.classes)
    for entry in params.extra_sets:
        name = set_name(entry)
        split = load_extra_set(
            Path(entry), labels, scorer.trained.contract.source_size, Path.cwd(), worker_count()
        )
        probs, _ = scorer.probabilities(split)
        y_true = split.labels.numpy()
        results[name] = extra_set_metrics(y_true, probs, list(labels.classes))
        actual = [f"{name}/{c}" for c in names[y_true]]
        pairs.append(pd.DataFrame({"actual": actual, "predicted": names[probs.argmax(1)]}))
        log.info(
            "extra set %s: accuracy %.4f, macro-F1 %.4f on %d images",
            name,
            results[name]["accuracy"],
            results[name]["macro_f1"],
            results[name]["n"],
        )
    frame = pd.concat(pairs) if pairs else pd.DataFrame(columns=["actual", "predicted"])
    write_text(plots / "extra_confusion.csv", to_csv_text(frame))
    return results


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
