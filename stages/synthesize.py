"""DVC stage ``synthesize``: Stable Diffusion images for the training split, with QC and provenance.

Only the training split is touched: validation and test stay in the balance stage's output,
which the train, evaluate and explain stages read directly.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from emotion.atomic import write_bytes, write_json, write_text
from emotion.config import load_sections
from emotion.distributed import setup, teardown
from emotion.envreport import env_report
from emotion.facedetect import FaceDetector
from emotion.manifest import to_csv_text
from emotion.neardup import phash
from emotion.packed import load_array, save_array
from emotion.params.synth import SynthParams
from emotion.scratch import shared_dir
from emotion.stage import log, run_stage
from emotion.synth.pipeline import generate, load_pipeline, pipeline_identity, resolve_dtype
from emotion.synth.plan import plan_synthesis
from emotion.synth.quality import FACE_SCORE_FLOOR
from emotion.synth.report import composition, merge_train, metadata_frame, summary
from emotion.synth.run import GenerationConfig, QualityConfig, Synthesizer
from emotion.synth.store import SlotStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--out", required=True, type=Path, help="provenance folder")
    parser.add_argument("--train-out", required=True, type=Path, help="merged training split")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, synth=SynthParams).synth
    ctx = setup()
    classes = json.loads((args.data / "labels.json").read_text())["classes"]
    frame = pd.read_csv(args.data / "train.csv", keep_default_na=False)
    images = load_array(args.data / "train.npy", mmap=False)
    counts = frame["label"].value_counts().to_dict()
    target = p.target_total if p.enabled else 0
    plans = plan_synthesis(counts, classes, target, p.max_synthetic_fraction)
    needs = {c.label: c.need for c in plans}
    if ctx.is_main:  # the plan is on disk before the first image is generated
        write_json(
            args.out / "plan.json", {"enabled": p.enabled, "classes": [c.as_dict() for c in plans]}
        )
    log.info("synthesis plan: %s", ", ".join(f"{k} +{v}" for k, v in needs.items()))

    decisions = []
    if any(needs.values()):
        dtype = resolve_dtype(p.dtype, ctx.device)
        pipe = load_pipeline(p.model_id, p.revision, ctx.device, dtype)
        identity = {
            **pipeline_identity(pipe, p.model_id, p.revision),
            "steps": p.steps,
            "guidance_scale": p.guidance_scale,
            "image_size": p.image_size,
            "dtype": str(dtype).removeprefix("torch."),
            "device": ctx.device.type,
        }
        gen = GenerationConfig(
            p.seed,
            p.prompt_template,
            p.expressions,
            p.styles,
            p.negative_prompt,
            p.face_margin,
            int(images.shape[1]),
            identity,
        )
        qc = QualityConfig(
            p.min_face_confidence, p.min_face_size, p.min_sharpness, p.phash_min_distance
        )

        source = functools.partial(
            generate,
            pipe,
            steps=p.steps,
            guidance_scale=p.guidance_scale,
            size=p.image_size,
            device=ctx.device,
        )

        store = SlotStore(shared_dir("synthesize", gen.settings()))
        log.info("generation cache: %s", store.root)
        with FaceDetector(p.face_model, FACE_SCORE_FLOOR) as detector:
            synth = Synthesizer(gen, qc, store, source, detector, batch_size=p.batch_size, ctx=ctx)
            real_codes = np.array([phash(img) for img in images], dtype=np.uint64)
            decisions = synth.run(needs, real_codes, p.oversample, p.max_rounds)

    if ctx.is_main:
        meta = metadata_frame(decisions, p.min_face_confidence)
        write_text(args.out / "synthetic_meta.csv", to_csv_text(meta))
        write_text(
            args.out / "synthetic_meta.jsonl",
            "".join(
                json.dumps({**d.record, "accepted": d.accepted, "reason": d.reason}, sort_keys=True)
                + "\n"
                for d in decisions
            ),
        )
        accepted = sum(d.accepted for d in decisions)
        if accepted:
            merged, merged_images = merge_train(frame, images, decisions, classes, store.root)
            save_array(args.train_out / "train.npy", merged_images)
            write_text(args.train_out / "train.csv", to_csv_text(merged))
        else:  # nothing accepted: the training split passes through byte for byte
            merged = frame
            for name in ("train.npy", "train.csv"):
                write_bytes(args.train_out / name, (args.data / name).read_bytes())
        status = composition(merged, classes)
        write_json(args.out / "status.json", status)
        write_json(args.out / "env_report.json", env_report(ctx.device))
        write_json(args.metrics, summary(p.enabled, p.model_id, plans, decisions, status))
        log.info("synthetic images: %d generated, %d accepted", len(decisions), accepted)
    teardown(ctx)


if __name__ == "__main__":
    run_stage(main)
