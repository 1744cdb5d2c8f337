"""Provenance tables, the merged training manifest, composition and metrics of a synthesis run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from emotion.data.manifest import SPLIT_COLUMNS
from emotion.synthesize.plan import ClassNeed
from emotion.synthesize.synthesizer import REASONS, Decision

META_COLUMNS = (
    "slot_id",
    "label",
    "index",
    "round",
    "accepted",
    "reason",
    "seed",
    "prompt",
    "negative_prompt",
    "model_id",
    "revision",
    "resolved_commit",
    "steps",
    "guidance_scale",
    "image_size",
    "dtype",
    "device",
    "face_count",
    "face_score",
    "face_box",
    "faces",
    "sharpness",
    "phash",
    "image",
    "image_sha256",
    "seconds",
)

#: ``metrics/synth.json``: synthetic images accepted into training (the rest: ``reports/``).
HEADLINE = {"synthetic": "accepted"}


def metadata_frame(decisions: Sequence[Decision], min_face_confidence: float) -> pd.DataFrame:
    """One row per generated candidate (accepted or not) with prompts, seeds and QC scores."""
    rows = []
    for d in decisions:
        r = d.record
        faces = r["faces"]
        rows.append(
            {
                **{k: r.get(k) for k in META_COLUMNS},
                "accepted": d.accepted,
                "reason": d.reason or "",
                "face_count": sum(f["score"] >= min_face_confidence for f in faces),
                "face_score": faces[0]["score"] if faces else 0.0,
                "face_box": "{x},{y},{width},{height}".format(**faces[0]) if faces else "",
                "faces": json.dumps(faces),
            }
        )
    return pd.DataFrame(rows, columns=list(META_COLUMNS))


def merge_train(
    frame: pd.DataFrame,
    images: np.ndarray,
    decisions: Sequence[Decision],
    classes: Sequence[str],
    store_root: Path,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The balanced training split plus the accepted synthetic images (``is_synthetic``).

    A synthetic row's ``path`` is ``synthetic/<label>/<index>.png``: a name, not a file in the
    workspace (the pixels are in the packed split, identified by ``sha256``).
    """
    accepted = [d.record for d in decisions if d.accepted]
    if not accepted:
        return frame[list(SPLIT_COLUMNS)].copy(), images
    first_group = int(frame["group"].max()) + 1 if len(frame) else 0
    extra = pd.DataFrame(
        {
            "index": np.arange(len(frame), len(frame) + len(accepted)),
            "path": [f"synthetic/{r['image']}" for r in accepted],
            "label": [r["label"] for r in accepted],
            "label_index": [list(classes).index(r["label"]) for r in accepted],
            "origin": [r["slot_id"] for r in accepted],
            "variant": 0,
            "is_augmented": False,
            "is_synthetic": True,
            "group": np.arange(first_group, first_group + len(accepted)),
            "source_split": "synthetic",
            "sha256": [r["image_sha256"] for r in accepted],
            "mask_path": "",
        }
    )
    pixels = []
    for r in accepted:
        with Image.open(store_root / r["image"]) as im:
            pixels.append(np.asarray(im.convert("L"), dtype=np.uint8))
    merged = pd.concat([frame[list(SPLIT_COLUMNS)], extra], ignore_index=True)
    return merged, np.concatenate([images, np.stack(pixels)])


def _truthy(column: pd.Series) -> pd.Series:
    return column.astype(str).str.lower().isin(("true", "1"))


def composition(train: pd.DataFrame, classes: Sequence[str]) -> dict[str, Any]:
    """Real / augmented / synthetic training images per class."""
    synthetic = _truthy(train["is_synthetic"])
    augmented = _truthy(train["is_augmented"]) & ~synthetic
    per_class = {}
    for label in classes:
        mine = train["label"] == label
        n = int(mine.sum())
        n_syn = int((mine & synthetic).sum())
        per_class[label] = {
            "real": int((mine & ~synthetic & ~augmented).sum()),
            "augmented": int((mine & augmented).sum()),
            "synthetic": n_syn,
            "total": n,
            "synthetic_fraction": round(n_syn / n, 6) if n else 0.0,
        }
    totals = {k: sum(c[k] for c in per_class.values()) for k in ("real", "augmented", "synthetic")}
    return {"classes": per_class, "total": {**totals, "all": len(train)}}


def summary(
    enabled: bool,
    model_id: str,
    plans: Sequence[ClassNeed],
    decisions: Sequence[Decision],
    status: dict[str, Any],
) -> dict[str, Any]:
    """``reports/synth.json``: plan, generated/accepted, rejections by reason, composition."""
    reasons = Counter(d.reason for d in decisions if not d.accepted)
    per_class = {}
    for plan in plans:
        mine = [d for d in decisions if d.record["label"] == plan.label]
        per_class[plan.label] = {
            "need": plan.need,
            "generated": len(mine),
            "accepted": sum(d.accepted for d in mine),
            "synthetic_fraction": status["classes"][plan.label]["synthetic_fraction"],
        }
    accepted = sum(d.accepted for d in decisions)
    return {
        "enabled": enabled,
        "model_id": model_id,
        "needed": sum(p.need for p in plans),
        "generated": len(decisions),
        "accepted": accepted,
        "acceptance_rate": round(accepted / len(decisions), 6) if decisions else 0.0,
        "rejected": {reason: reasons.get(reason, 0) for reason in REASONS},
        "classes": per_class,
        "train_images": status["total"],
    }
