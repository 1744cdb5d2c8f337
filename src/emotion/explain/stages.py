"""The DVC stage ``explain``: Grad-CAM, Grad-CAM++, SHAP and LIME on a probe set, with checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from emotion.core.atomic import replace_dir, write_json, write_jsonl
from emotion.core.stage import log, worker_count
from emotion.explain.explainer import Explainer, explain_all
from emotion.explain.figures import class_grid
from emotion.explain.layers import target_layer
from emotion.explain.params import ExplainParams
from emotion.explain.probe import background_rows, load_masks, select_probes
from emotion.training.model import build_model, load_trained
from emotion.training.tensordata import Preprocess, TensorSplit


def run_explain(
    params: ExplainParams, *, data: Path, model: Path, out: Path, metrics: Path, plots: Path
) -> dict[str, Any]:
    """Explain a class-balanced probe set of test images and measure every method."""
    torch.set_num_threads(worker_count())
    trained = load_trained(model)
    classes = trained.classes
    torch.manual_seed(params.seed)
    random_model = build_model(trained.params, len(classes))  # same architecture, random init
    test = TensorSplit.load(data, "test", classes)
    val = TensorSplit.load(data, "val", classes)
    images_all = test.images[:, 0].numpy().astype(np.float64)
    background = background_rows(
        val.labels.numpy(), len(classes), params.shap_background, params.seed
    )
    pre = Preprocess(trained.contract)
    ex = Explainer(trained.model, random_model, pre, val.images[background, 0].numpy(), params)
    labels = test.labels.numpy()
    predicted = ex.probabilities(trained.model)(images_all).argmax(1)
    rows = select_probes(labels, predicted, len(classes), params.per_class, params.seed)
    images = images_all[rows]
    masks = load_masks(test.frame, rows, images.shape[1:], Path.cwd())
    maps, summary, probs = explain_all(
        ex, images, labels[rows], masks, lambda m: log.info("explaining: %s", m)
    )
    pred = probs.argmax(1)
    summary["probe"] = {
        "images": len(rows),
        "per_class": params.per_class,
        "correct": int((pred == labels[rows]).sum()),
        "incorrect": int((pred != labels[rows]).sum()),
        "with_masks": masks is not None,
    }
    summary["target_layer"] = target_layer(trained.model, params.target_layer)[2]
    write_json(metrics, summary)
    records = probe_records(test.frame, rows, labels, probs, classes)
    with replace_dir(out) as tmp:
        write_jsonl(tmp / "records.jsonl", records)
        np.savez_compressed(tmp / "maps.npz", images=images.astype(np.uint8), **maps)
    with replace_dir(plots) as tmp:
        write_grids(tmp, params.methods, classes, images, maps, labels[rows], probs)
    gc = summary["methods"].get("gradcam", {})
    log.info(
        "explained %d probe images; Grad-CAM sanity %s, localisation %s vs random %s",
        len(rows),
        gc.get("sanity"),
        gc.get("localisation"),
        summary["random_baseline"].get("localisation"),
    )
    return summary


def probe_records(
    frame: pd.DataFrame,
    rows: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
) -> list[dict[str, Any]]:
    """One record per probe image: where it came from, label, prediction and its maps' key."""
    pred = probs.argmax(1)
    masks = frame["mask_path"] if "mask_path" in frame else pd.Series([""] * len(frame))
    return [
        {
            "index": int(row),
            "path": frame["path"].iat[row],
            "label": classes[labels[row]],
            "predicted": classes[pred[k]],
            "confidence": round(float(probs[k].max()), 6),
            "correct": bool(pred[k] == labels[row]),
            "mask_path": masks.iat[row],
            "maps_key": k,
        }
        for k, row in enumerate(rows)
    ]


def write_grids(
    folder: Path,
    methods: list[str],
    classes: list[str],
    images: np.ndarray,
    maps: dict[str, np.ndarray],
    labels: np.ndarray,
    probs: np.ndarray,
) -> None:
    """One PNG grid per method and class: ``<folder>/<method>/<class>.png``."""
    names, pred = np.array(classes), probs.argmax(1)
    for method in methods:
        for c, name in enumerate(classes):
            sel = np.flatnonzero(labels == c)
            if len(sel):
                class_grid(
                    images[sel],
                    maps[method][sel],
                    names[labels[sel]],
                    names[pred[sel]],
                    probs[sel].max(1),
                    f"{method}: {name}",
                    folder / method / f"{name}.png",
                )
