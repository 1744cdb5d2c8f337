"""The DVC stage ``explain``: Grad-CAM, Grad-CAM++, SHAP and LIME on a probe set, with checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import torch

from emotion.core.atomic import replace_dir, write_jsonl
from emotion.core.results import write_results
from emotion.core.stage import log, worker_count
from emotion.explain.explainer import Explainer, explain_all
from emotion.explain.figures import class_grid, mean_face_figure, region_table_figure
from emotion.explain.params import ExplainMethod, ExplainParams
from emotion.explain.patterns import ProbeRegions, check_expected_classes
from emotion.explain.probe import background_rows, select_probes
from emotion.regions.masks import REGIONS
from emotion.regions.regionset import RegionSet, load_source_labels
from emotion.training.model import TrainedModel, build_model, load_trained
from emotion.training.tensordata import Preprocess, TensorSplit


def method_rows(measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method (the random baseline included): the scores ``dvc plots`` compares."""
    return [
        {
            "method": name,
            "faithfulness": m["faithfulness"],
            "deletion_auc": m["deletion_auc"],
            "insertion_auc": m["insertion_auc"],
            "pointing_game": m.get("localisation", {}).get("pointing_game"),
            "seconds_per_image": m["seconds_per_image"],
        }
        for name, m in measured.items()
    ]


def write_explain_results(
    summary: dict[str, Any], methods: Sequence[str], *, report: Path, metrics: Path
) -> None:
    """The report (its rows: one per method, random included) and the headline metrics: each
    method's faithfulness under the method's name."""
    rows = method_rows({**summary["methods"], "random": summary["random_baseline"]})
    keys = {m: f"methods.{m}.faithfulness" for m in methods}
    write_results(summary, rows, report_path=report, metrics_path=metrics, keys=keys)


def run_explain(
    params: ExplainParams,
    *,
    data: Path,
    regions: Path,
    model: Path,
    out: Path,
    report: Path,
    metrics: Path,
    plots: Path,
    region_plots: Path,
) -> dict[str, Any]:
    """Explain a class-balanced probe set of test images and measure every method."""
    torch.set_num_threads(worker_count())
    trained = load_trained(model)
    classes = trained.classes
    check_expected_classes(params, classes)
    test = TensorSplit.load(data, "test", classes)
    ex = build_explainer(params, trained, TensorSplit.load(data, "val", classes))
    images_all = test.images[:, 0].numpy().astype(np.float64)
    labels = test.labels.numpy()
    predicted = ex.probabilities(trained.model)(images_all).argmax(1)
    rows = select_probes(labels, predicted, len(classes), params.per_class, params.seed)
    images = images_all[rows]
    mesh = RegionSet.load(regions, "test", test.frame["path"].tolist())
    source_masks = load_source_labels(test.frame, rows, images.shape[1:], Path.cwd())
    probe_regions = ProbeRegions.build(mesh.labels[rows], mesh.fitted[rows], source_masks)
    maps, summary, probs = explain_all(
        ex, images, labels[rows], probe_regions, classes, lambda m: log.info("explaining: %s", m)
    )
    pred = probs.argmax(1)
    summary["probe"] = {
        "images": len(rows),
        "per_class": params.per_class,
        "correct": int((pred == labels[rows]).sum()),
        "incorrect": int((pred != labels[rows]).sum()),
        "masks": probe_regions.source,
        "face_mesh_fitted": len(probe_regions.label_rows),
        "face_mesh_unfit": [test.frame["path"].iat[rows[k]] for k in probe_regions.unfit],
    }
    summary["target_layer"] = ex.target_layer
    write_explain_results(summary, params.methods, report=report, metrics=metrics)
    records = probe_records(test.frame, rows, labels, probs, classes)
    with replace_dir(out) as tmp:
        write_jsonl(tmp / "records.jsonl", records)
        np.savez_compressed(tmp / "maps.npz", images=images.astype(np.uint8), **maps)
    with replace_dir(plots) as tmp:
        write_grids(tmp, params.methods, classes, images, maps, labels[rows], probs)
        fitted, points = mesh.fitted[rows], mesh.points[rows]
        write_mean_faces(tmp / "regions", classes, images, maps, points, fitted, pred)
    write_pattern_plots(region_plots, summary.get("patterns"))
    log.info(
        "explained %d probe images (masks: %s, face mesh unfit: %d); expected patterns: %s",
        len(rows),
        probe_regions.source,
        len(probe_regions.unfit),
        summary.get("patterns", {}).get("matches"),
    )
    return summary


def build_explainer(params: ExplainParams, trained: TrainedModel, val: TensorSplit) -> Explainer:
    """The trained model, its random-weight twin and SHAP's class-balanced background."""
    torch.manual_seed(params.seed)
    random_model = build_model(trained.params, len(trained.classes))  # same architecture
    rows = background_rows(
        val.labels.numpy(), len(trained.classes), params.shap_background, params.seed
    )
    background = val.images[rows, 0].numpy()
    return Explainer(trained.model, random_model, Preprocess(trained.contract), background, params)


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


def write_pattern_plots(folder: Path, patterns: dict[str, Any] | None) -> None:
    """The region table as DVC plot data: enrichment per class / region with a column for every
    method (empty when not run, so dvc.yaml's plots always find their fields), ablation drops,
    and a heatmap PNG; written even when no probe face had a mesh."""
    table = patterns["classes"] if patterns else {}
    ran = next((list(e["methods"]) for e in table.values() if "methods" in e), [])
    cells = [(n, r) for n, e in table.items() if e["probes"] for r in REGIONS]

    def enrichment(method: str) -> list[float]:
        if method not in ran:
            return [float("nan")] * len(cells)
        return [table[n]["methods"][method]["enrichment"][r] for n, r in cells]

    names = [f"{n} / {r}" for n, r in cells]
    columns = [*get_args(ExplainMethod), "random"]
    attribution = pd.DataFrame({"cell": names, **{m: enrichment(m) for m in columns}})
    ablation = pd.DataFrame(
        {"cell": names, "drop": [table[n]["ablation"]["drop"][r] for n, r in cells]}
    )
    with replace_dir(folder) as tmp:
        attribution.to_csv(tmp / "attribution.csv", index=False)
        ablation.to_csv(tmp / "ablation.csv", index=False)
        region_table_figure(table, ran, tmp / "table.png")


def write_mean_faces(
    folder: Path,
    classes: list[str],
    images: np.ndarray,
    maps: dict[str, np.ndarray],
    points: np.ndarray,
    fitted: np.ndarray,
    targets: np.ndarray,
) -> None:
    """Per class: mean face of its fitted probes with each method's mean map and the regions.

    ``points``, ``fitted`` and ``targets`` are per probe: landmarks, mesh fitted, explained class.
    """
    for c, name in enumerate(classes):
        sel = np.flatnonzero(fitted & (targets == c))
        if len(sel):
            picked = {m: maps[m][sel] for m in maps if m != "random"}
            mean_face_figure(name, images[sel], picked, points[sel], folder / f"{name}.png")
