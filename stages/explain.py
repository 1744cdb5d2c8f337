"""DVC stage ``explain``: Grad-CAM, Grad-CAM++, SHAP and LIME on a probe set, with checks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from emotion.atomic import replace_dir, write_json, write_text
from emotion.config import load_sections
from emotion.explain.figures import class_grid
from emotion.explain.layers import target_layer
from emotion.explain.probe import background_rows, load_masks, select_probes
from emotion.explain.run import ExplainConfig, Explainer, explain_all
from emotion.model import build_model, load_trained
from emotion.params.explain import ExplainParams
from emotion.stage import log, run_stage, worker_count
from emotion.tensordata import Preprocess, TensorSplit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--model", required=True, type=Path, help="best_model.pth")
    parser.add_argument("--out", required=True, type=Path, help="folder for records and maps")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path, help="folder for PNG grids")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, explain=ExplainParams).explain
    torch.set_num_threads(worker_count())
    trained = load_trained(args.model)
    model, classes, prep = trained.model, trained.classes, trained.preprocessing
    torch.manual_seed(p.seed)
    random_model = build_model(trained.spec, prep["image_size"])  # same architecture, random init
    pre = Preprocess(prep["image_size"], prep["in_chans"], prep["mean"], prep["std"])
    cfg = ExplainConfig(
        tuple(p.methods),
        p.target_layer,
        p.seed,
        p.shap_nsamples,
        p.lime_samples,
        p.lime_segments,
        p.curve_steps,
        p.sanity_threshold,
    )

    test = TensorSplit.load(args.data, "test", classes)
    val = TensorSplit.load(args.data, "val", classes)
    images_all = test.images[:, 0].numpy().astype(np.float64)
    background = val.images[
        background_rows(val.labels.numpy(), len(classes), p.shap_background, p.seed), 0
    ]
    ex = Explainer(model, random_model, pre, background.numpy(), cfg)
    predicted = ex.probabilities(model)(images_all).argmax(1)
    labels = test.labels.numpy()
    rows = select_probes(labels, predicted, len(classes), p.per_class, p.seed)
    images = images_all[rows]
    masks = load_masks(test.frame, rows, images.shape[1:], Path.cwd())
    maps, summary, probs = explain_all(
        ex, images, labels[rows], masks, lambda m: log.info("explaining: %s", m)
    )

    names = np.array(classes)
    pred = probs.argmax(1)
    summary["probe"] = {
        "images": len(rows),
        "per_class": p.per_class,
        "correct": int((pred == labels[rows]).sum()),
        "incorrect": int((pred != labels[rows]).sum()),
        "with_masks": masks is not None,
    }
    summary["target_layer"] = target_layer(model, p.target_layer)[2]
    write_json(args.metrics, summary)
    with replace_dir(args.out) as tmp:
        records = []
        for k, row in enumerate(rows):
            records.append(
                {
                    "index": int(row),
                    "path": test.frame["path"].iat[row],
                    "label": classes[labels[row]],
                    "predicted": classes[pred[k]],
                    "confidence": round(float(probs[k].max()), 6),
                    "correct": bool(pred[k] == labels[row]),
                    "mask_path": test.frame["mask_path"].iat[row]
                    if "mask_path" in test.frame
                    else "",
                    "maps_key": k,
                }
            )
        write_text(
            tmp / "records.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        )
        np.savez_compressed(tmp / "maps.npz", images=images.astype(np.uint8), **maps)
    with replace_dir(args.plots) as tmp:
        for method in cfg.methods:
            for c, name in enumerate(classes):
                sel = np.flatnonzero(labels[rows] == c)
                if len(sel):
                    class_grid(
                        images[sel],
                        maps[method][sel],
                        names[labels[rows][sel]],
                        names[pred[sel]],
                        probs[sel].max(1),
                        f"{method}: {name}",
                        tmp / method / f"{name}.png",
                    )
    gc = summary["methods"].get("gradcam", {})
    log.info(
        "explained %d probe images; Grad-CAM sanity %s, localisation %s vs random %s",
        len(rows),
        gc.get("sanity"),
        gc.get("localisation"),
        summary["random_baseline"].get("localisation"),
    )


if __name__ == "__main__":
    run_stage(main)
