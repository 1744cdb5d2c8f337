"""The DVC stage ``synthesize``: Stable Diffusion images for the training split, with QC.

Only the training split is touched: validation and test stay in the balance stage's output,
which the train, evaluate and explain stages read directly.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from emotion.core.atomic import write_bytes, write_json, write_jsonl, write_text
from emotion.core.distributed import DistContext, setup, teardown
from emotion.core.envreport import env_report
from emotion.core.errors import ConfigError
from emotion.core.results import write_results
from emotion.core.scratch import shared_dir
from emotion.core.stage import log
from emotion.data.manifest import read_classes, to_csv_text
from emotion.data.neardup import phash
from emotion.data.packed import load_array, save_array
from emotion.synthesize.params import SynthParams
from emotion.synthesize.pipeline import generate, load_pipeline, pipeline_identity, resolve_dtype
from emotion.synthesize.plan import plan_synthesis
from emotion.synthesize.quality import FACE_SCORE_FLOOR
from emotion.synthesize.report import HEADLINE, composition, merge_train, metadata_frame, summary
from emotion.synthesize.store import SlotStore
from emotion.synthesize.synthesizer import Decision, Synthesizer, generation_settings
from emotion.vision.facedetect import FaceDetector
from emotion.vision.params import CropParams


def run_synthesize(
    params: SynthParams,
    crop: CropParams,
    *,
    data: Path,
    out: Path,
    train_out: Path,
    report: Path,
    metrics: Path,
) -> list[Decision]:
    """Plan, generate and judge synthetic faces; write provenance and the merged training split."""
    ctx = setup()
    classes = read_classes(data)
    try:
        params.check_classes(classes)
    except ValueError as exc:
        raise ConfigError(f"{exc} (the classes of {data / 'labels.json'})") from None
    frame = pd.read_csv(data / "train.csv", keep_default_na=False)
    images = load_array(data / "train.npy", mmap=False)
    target = params.target_total if params.enabled else 0
    plans = plan_synthesis(
        frame["label"].value_counts().to_dict(), classes, target, params.max_synthetic_fraction
    )
    needs = {c.label: c.need for c in plans}
    if ctx.is_main:  # the plan is on disk before the first image is generated
        plan = {"enabled": params.enabled, "classes": [c.as_dict() for c in plans]}
        write_json(out / "plan.json", plan)
    log.info("synthesis plan: %s", ", ".join(f"{k} +{v}" for k, v in needs.items()))
    decisions, store_root = [], None
    if any(needs.values()):
        decisions, store_root = _generate(params, crop, ctx, needs, images)
    if ctx.is_main:
        meta = metadata_frame(decisions, params.min_face_confidence)
        write_text(out / "synthetic_meta.csv", to_csv_text(meta))
        lines = [{**d.record, "accepted": d.accepted, "reason": d.reason} for d in decisions]
        write_jsonl(out / "synthetic_meta.jsonl", lines)
        accepted = sum(d.accepted for d in decisions)
        if accepted:
            merged, merged_images = merge_train(frame, images, decisions, classes, store_root)
            save_array(train_out / "train.npy", merged_images)
            write_text(train_out / "train.csv", to_csv_text(merged))
        else:  # nothing accepted: the training split passes through byte for byte
            merged = frame
            for name in ("train.npy", "train.csv"):
                write_bytes(train_out / name, (data / name).read_bytes())
        status = composition(merged, classes)
        write_json(out / "status.json", status)
        write_json(out / "env_report.json", env_report(ctx.device))
        results = summary(params.enabled, params.model_id, plans, decisions, status)
        rows = [{"class": c, **v} for c, v in results["classes"].items()]
        write_results(results, rows, report_path=report, metrics_path=metrics, keys=HEADLINE)
        log.info("synthetic images: %d generated, %d accepted", len(decisions), accepted)
    teardown(ctx)
    return decisions


def _generate(
    params: SynthParams,
    crop: CropParams,
    ctx: DistContext,
    needs: dict[str, int],
    images: np.ndarray,
) -> tuple[list[Decision], Path]:
    """Load the diffusers pipeline and run the synthesizer; returns (decisions, store folder)."""
    dtype = resolve_dtype(params.dtype, ctx.device)
    pipe = load_pipeline(params.model_id, params.revision, ctx.device, dtype)
    identity = {
        **pipeline_identity(pipe, params.model_id, params.revision),
        "steps": params.steps,
        "guidance_scale": params.guidance_scale,
        "image_size": params.image_size,
        "dtype": str(dtype).removeprefix("torch."),
        "device": ctx.device.type,
    }
    source = functools.partial(
        generate,
        pipe,
        steps=params.steps,
        guidance_scale=params.guidance_scale,
        size=params.image_size,
        device=ctx.device,
    )
    size = int(images.shape[1])
    store = SlotStore(shared_dir("synthesize", generation_settings(params, crop, identity, size)))
    log.info("generation cache: %s", store.root)
    with FaceDetector(params.face_model, FACE_SCORE_FLOOR) as detector:
        synth = Synthesizer(
            params, store, source, detector, crop=crop, identity=identity, output_size=size, ctx=ctx
        )
        real_codes = np.array([phash(img) for img in images], dtype=np.uint64)
        decisions = synth.run(needs, real_codes, params.oversample, params.max_rounds)
    return decisions, store.root
