"""Synthesize stage: plan arithmetic, prompts, quality control, resume, and the stage end to end."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter
from skimage.data import astronaut

from emotion.assets.model_files import DEFAULT_FACE_MODEL
from emotion.core.errors import ConfigError
from emotion.data.neardup import HammingIndex, phash
from emotion.data.packed import save_array
from emotion.demo_data.faces import (
    render_face,
    sample_expression,
    sample_identity,
    sample_nuisance,
)
from emotion.synthesize.pipeline import generate, tiny_pipeline
from emotion.synthesize.plan import equal_shares, fraction_cap, plan_synthesis
from emotion.synthesize.prompts import Slot, make_slots, slot_seed
from emotion.synthesize.quality import FACE_SCORE_FLOOR, face_crop, measure, rejection_reason
from emotion.synthesize.report import META_COLUMNS
from emotion.synthesize.store import SlotStore
from emotion.synthesize.synthesizer import REASONS, Synthesizer
from emotion.tools.params_file import load_params, validate_params
from emotion.vision.facedetect import FaceDetector

from .conftest import REPO, params_text, section, tool_env

CLASSES = tuple(section("ingest").classes)

FACE_MODEL = REPO / DEFAULT_FACE_MODEL
DEMO = section("synth")


@pytest.fixture(scope="module")
def detector():
    with FaceDetector(FACE_MODEL, FACE_SCORE_FLOOR) as det:
        yield det


def astronaut_224() -> Image.Image:
    return Image.fromarray(astronaut()).resize((224, 224), Image.Resampling.BILINEAR)


def demo_faces(slots: Sequence[Slot]) -> list[Image.Image]:
    """A deterministic stand-in for Stable Diffusion that draws real (procedural) faces."""
    ranges = section("demo_data", occlusion_prob=0.0, blur_max=0.0)
    images = []
    for slot in slots:
        rng = np.random.default_rng(slot.seed)
        pixels, _ = render_face(
            sample_identity(rng),
            sample_expression(rng, slot.label, 1.0),
            sample_nuisance(rng, ranges),
            160,
            rng,
        )
        images.append(Image.fromarray(pixels).convert("RGB"))
    return images


# ----------------------------------------------------------------------------- plan


def test_plan_arithmetic_holds_for_random_cases() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        counts = {c: int(rng.integers(0, 5000)) for c in CLASSES}
        total = int(rng.integers(0, 60000))
        fraction = float(rng.choice([0.0, 0.1, 0.33, 0.6, 0.75, 0.95]))
        plans = plan_synthesis(counts, CLASSES, total, fraction)
        assert [p.label for p in plans] == list(CLASSES)
        assert sum(p.target for p in plans) == total
        for p in plans:
            assert p.need >= 0
            assert Fraction(p.need) <= Fraction(fraction) * (p.current + p.need) + Fraction(
                1, 10**9
            )
            assert p.current + p.need <= max(p.current, p.target)
            assert p.need == max(0, min(p.target - p.current, p.cap))


def test_fraction_cap_is_the_largest_allowed_count() -> None:
    for current in range(0, 300, 7):
        for f in (0.0, 0.25, 0.5, 0.6, 0.9):
            cap, exact = fraction_cap(current, f), Fraction(str(f))  # 0.6 means 3/5
            assert cap * (1 - exact) <= exact * current
            assert (cap + 1) * (1 - exact) > exact * current
    assert fraction_cap(100, 0.6) == 150  # 150 / 250 = 0.6 exactly
    assert equal_shares(10, 4) == [3, 3, 2, 2]


def test_workstation_scale_plan() -> None:
    counts = {"angry": 3995, "fearful": 4097, "happy": 7215, "neutral": 4965, "sad": 4830}
    counts["surprised"] = 3171
    plans = {p.label: p for p in plan_synthesis(counts, CLASSES, 83000, 0.60)}
    assert [p.target for p in plans.values()] == [13834, 13834, 13833, 13833, 13833, 13833]
    assert plans["happy"].need == 13833 - 7215
    assert plans["surprised"].need == min(13833 - 3171, fraction_cap(3171, 0.6))
    for p in plans.values():
        assert p.need / (p.current + p.need) <= 0.60


# -------------------------------------------------------------------------- prompts


def test_every_class_gets_its_own_expression_prompt() -> None:
    """The original report's key mismatch left fearful/surprised with a generic prompt."""
    prompts = {}
    for label in CLASSES:
        slots = make_slots(
            label,
            0,
            len(DEMO.styles),
            seed=DEMO.seed,
            template=DEMO.prompt_template,
            expressions=DEMO.expressions,
            styles=DEMO.styles,
            negative_prompt=DEMO.negative_prompt,
        )
        for i, slot in enumerate(slots):
            assert DEMO.expressions[label] in slot.prompt
            assert f"expressive {label} face" in slot.prompt
            assert DEMO.styles[i] in slot.prompt
        prompts[label] = {s.prompt for s in slots}
    phrases = list(DEMO.expressions.values())
    assert len(set(phrases)) == len(CLASSES)
    for a in CLASSES:
        for b in CLASSES:
            if a != b:
                assert not prompts[a] & prompts[b]


def test_expressions_must_cover_every_class() -> None:
    data = load_params(REPO / "params.yaml").model_dump()
    del data["synth"]["expressions"]["surprised"]
    with pytest.raises(ConfigError, match="surprised"):
        validate_params(data)


def test_slot_seeds_depend_only_on_the_slot() -> None:
    seeds = {slot_seed(1, c, i) for c in CLASSES for i in range(200)}
    assert len(seeds) == 6 * 200
    assert slot_seed(1, "sad", 7) == slot_seed(1, "sad", 7) != slot_seed(2, "sad", 7)


# -------------------------------------------------------------------- quality control


def test_qc_accepts_a_real_face(detector: FaceDetector) -> None:
    m = measure(astronaut_224(), detector, 0.25)
    assert rejection_reason(m, 0.75, 0.15, 60.0) is None
    crop = face_crop(astronaut_224(), m.faces[0], 0.25, 48)
    assert crop.shape == (48, 48)
    assert crop.dtype == np.uint8
    assert crop.std() > 20


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("blank", {"no_face"}),
        ("heavy_blur", {"blurry", "no_face"}),
        ("moderate_blur", {"blurry"}),
        ("two_faces", {"multiple_faces"}),
        ("tiny_face", {"small_face"}),
    ],
)
def test_qc_rejects_bad_images(detector: FaceDetector, name: str, reasons: set[str]) -> None:
    photo = astronaut_224()
    face = Image.fromarray(astronaut()).crop((120, 0, 320, 200))
    if name == "blank":
        image = Image.new("RGB", (224, 224), (128, 128, 128))
    elif name == "heavy_blur":
        image = photo.filter(ImageFilter.GaussianBlur(8))
    elif name == "moderate_blur":  # face still found (score 0.9), Laplacian variance ~30
        image = (
            Image.fromarray(astronaut()).resize((448, 448)).filter(ImageFilter.GaussianBlur(1.5))
        )
    elif name == "two_faces":
        image = Image.new("RGB", (224, 224), (128, 128, 128))
        image.paste(face.resize((112, 112)), (0, 56))
        image.paste(face.resize((112, 112)), (112, 56))
    else:  # detected confidently (0.9) but only 14% of the image side
        image = Image.new("RGB", (256, 256), (128, 128, 128))
        image.paste(face.resize((80, 80)), (88, 88))
    assert rejection_reason(measure(image, detector, 0.25), 0.75, 0.15, 60.0) in reasons


def _synthesizer(
    tmp: Path, detector: FaceDetector, source, *, batch_size: int = 4, phash_min: int = 4
) -> Synthesizer:
    params = section(
        "synth",
        seed=7,
        batch_size=batch_size,
        min_face_confidence=0.5,  # procedural faces score 0.5-0.8
        min_face_size=0.15,
        min_sharpness=60.0,
        phash_min_distance=phash_min,
    )
    return Synthesizer(
        params,
        SlotStore(tmp),
        source,
        detector,
        crop=section("crop", face_margin=0.25),
        identity={"model_id": "demo-faces"},
        output_size=48,
        progress=False,
    )


def test_near_duplicate_of_a_training_image_is_rejected(
    tmp_path: Path, detector: FaceDetector
) -> None:
    """A candidate whose face crop matches a real training image's pHash never gets in."""
    synth = _synthesizer(tmp_path, detector, demo_faces)
    needs = {"happy": 3}
    first = synth.run(needs, np.zeros(0, dtype=np.uint64), oversample=1.0, max_rounds=1)
    accepted = [d.record for d in first if d.accepted]
    assert len(accepted) == 3
    training = Image.open(tmp_path / accepted[0]["image"]).convert("L")
    real_codes = np.array([phash(np.asarray(training))], dtype=np.uint64)
    again = synth.decide([d.record for d in first], needs, _index(real_codes, 4))
    assert again[0].reason == "near_duplicate_real"
    assert sum(d.accepted for d in again) == 2


def _index(codes: np.ndarray, radius: int) -> HammingIndex:
    index = HammingIndex(radius)
    for code in codes:
        index.add(int(code))
    return index


def test_class_cap_and_synthetic_duplicates(tmp_path: Path, detector: FaceDetector) -> None:
    """Identical candidates count once; a class never gets more than its need."""
    same = lambda slots: demo_faces([slots[0]] * len(slots))  # noqa: E731
    synth = _synthesizer(tmp_path / "dup", detector, same, batch_size=8)
    decisions = synth.run({"sad": 2}, np.zeros(0, np.uint64), oversample=3.0, max_rounds=1)
    reasons = [d.reason for d in decisions]
    assert reasons.count(None) == 1
    assert set(reasons) - {None} == {"near_duplicate_synthetic"}

    synth = _synthesizer(tmp_path / "cap", detector, demo_faces)
    decisions = synth.run({"sad": 2}, np.zeros(0, np.uint64), oversample=3.0, max_rounds=1)
    assert sum(d.accepted for d in decisions) == 2
    assert {d.reason for d in decisions if not d.accepted} <= {"class_cap", *REASONS}
    assert any(d.reason == "class_cap" for d in decisions)


# ------------------------------------------------------------------- resume and determinism


class KilledError(Exception):
    """Stands in for SIGKILL in the middle of generation."""


def test_resume_after_a_kill_gives_the_uninterrupted_result(
    tmp_path: Path, detector: FaceDetector
) -> None:
    needs = {"angry": 3, "fearful": 2, "surprised": 3}
    real = np.zeros(0, np.uint64)

    def run(store: Path, source, batch_size: int = 4) -> list:
        synth = _synthesizer(store, detector, source, batch_size=batch_size)
        return synth.run(needs, real, oversample=1.5, max_rounds=3)

    reference = run(tmp_path / "straight", demo_faces)
    calls = []

    def dies_after_two_batches(slots: Sequence[Slot]) -> list[Image.Image]:
        calls.append(len(slots))
        if len(calls) > 2:
            raise KilledError
        return demo_faces(slots)

    with pytest.raises(KilledError):
        run(tmp_path / "resumed", dies_after_two_batches)
    stored = len(list((tmp_path / "resumed").glob("*/*.json")))
    assert stored == 8  # two batches of 4 survived the kill

    regenerated = []

    def counting(slots: Sequence[Slot]) -> list[Image.Image]:
        regenerated.extend(s.slot_id for s in slots)
        return demo_faces(slots)

    resumed = run(tmp_path / "resumed", counting)
    key = lambda ds: [(d.record["slot_id"], d.record["image_sha256"], d.reason) for d in ds]  # noqa: E731
    assert key(resumed) == key(reference)
    assert len(regenerated) == len(reference) - stored
    assert sum(d.accepted for d in reference) == sum(needs.values())


# ------------------------------------------------------------------------ tiny pipeline


def test_tiny_pipeline_is_deterministic_and_each_image_follows_its_seed() -> None:
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    slots = make_slots(
        "happy",
        0,
        3,
        seed=1,
        template=DEMO.prompt_template,
        expressions=DEMO.expressions,
        styles=DEMO.styles,
        negative_prompt=DEMO.negative_prompt,
    )
    kwargs = {"steps": 2, "guidance_scale": 7.5, "size": 32, "device": pipe.device}
    first = generate(pipe, slots, **kwargs)
    again = generate(pipe, slots, **kwargs)
    alone = generate(pipe, slots[1:2], **kwargs)[0]
    assert [im.size for im in first] == [(32, 32)] * 3
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(first[1]))
    # the same seed alone gives the same image up to kernel rounding (hence fixed blocks)
    diff = np.abs(np.asarray(alone, np.int16) - np.asarray(first[1], np.int16))
    assert diff.max() <= 2


def _balance_folder(root: Path, per_class: int = 6, size: int = 48) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", 2), ("test", 2)):
        labels = [c for c in CLASSES for _ in range(n)]
        frame = pd.DataFrame(
            {
                "index": range(len(labels)),
                "path": [f"raw/{c}/{i}.png" for i, c in enumerate(labels)],
                "label": labels,
                "label_index": [CLASSES.index(c) for c in labels],
                "origin": [f"raw/{c}/{i}.png" for i, c in enumerate(labels)],
                "variant": 0,
                "is_augmented": False,
                "is_synthetic": False,
                "group": range(len(labels)),
                "source_split": "",
                "sha256": "0" * 64,
                "mask_path": "",
            }
        )
        frame.to_csv(root / f"{split}.csv", index=False)
        save_array(root / f"{split}.npy", rng.integers(0, 256, (len(labels), size, size), np.uint8))
    (root / "labels.json").write_text(json.dumps({"classes": list(CLASSES)}))
    return root


def _run_stage(tmp: Path, **overrides: object) -> Path:
    data = tmp / "balance"
    data.mkdir()
    _balance_folder(data)
    sets = {
        "synth.target_total": 48,
        "synth.steps": 2,
        "synth.image_size": 32,
        "synth.max_rounds": 2,
        "synth.face_model": FACE_MODEL.as_posix(),
        **overrides,
    }
    params = tmp / "params.yaml"
    params.write_text(params_text(sets))
    cmd = ["python", str(REPO / "stages/synthesize.py"), "--data", str(data)]
    cmd += ["--out", str(tmp / "prov")]
    cmd += ["--train-out", str(tmp / "train"), "--report", str(tmp / "synth.json")]
    cmd += ["--metrics", str(tmp / "headline.json")]
    done = subprocess.run(
        [*cmd, "--params", str(params)],
        capture_output=True,
        text=True,
        env=tool_env(EMOTION_SCRATCH=str(tmp / "scratch")),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return data


@pytest.mark.slow
def test_stage_end_to_end_with_the_tiny_pipeline(tmp_path: Path) -> None:
    """Plan -> generate -> QC (noise: all rejected, reasons counted) -> provenance files."""
    data = _run_stage(tmp_path)
    plan = json.loads((tmp_path / "prov/plan.json").read_text())
    assert [c["need"] for c in plan["classes"]] == [2] * 6  # 8 per class wanted, 6 present
    metrics = json.loads((tmp_path / "synth.json").read_text())
    assert metrics["accepted"] == 0
    assert metrics["generated"] == sum(metrics["rejected"].values()) > 0
    assert set(metrics["rejected"]) == set(REASONS)
    meta = pd.read_csv(tmp_path / "prov/synthetic_meta.csv", keep_default_na=False)
    assert tuple(meta.columns) == META_COLUMNS
    assert len(meta) == metrics["generated"]
    assert set(meta["model_id"]) == {"tiny"}
    assert set(meta["steps"]) == {2}
    assert meta["seed"].is_unique
    assert (meta["reason"] != "").all()
    lines = (tmp_path / "prov/synthetic_meta.jsonl").read_text().splitlines()
    assert [json.loads(x)["slot_id"] for x in lines] == list(meta["slot_id"])
    env = json.loads((tmp_path / "prov/env_report.json").read_text())
    assert env["packages"]["diffusers"]
    assert env["device"] == "cpu"
    status = json.loads((tmp_path / "prov/status.json").read_text())
    assert status["total"]["synthetic"] == 0
    for name in ("train.csv", "train.npy"):  # nothing accepted: training split unchanged
        assert (tmp_path / "train" / name).read_bytes() == (data / name).read_bytes()
    assert not (tmp_path / "train" / "val.csv").exists()  # never touches val/test


@pytest.mark.slow
def test_disabled_synthesis_passes_the_training_split_through(tmp_path: Path) -> None:
    data = _run_stage(tmp_path, **{"synth.enabled": False})
    metrics = json.loads((tmp_path / "synth.json").read_text())
    assert metrics["generated"] == 0
    assert metrics["needed"] == 0
    assert not metrics["enabled"]
    assert not (tmp_path / "scratch").exists()  # nothing generated, no generation cache
    for name in ("train.csv", "train.npy"):
        assert (tmp_path / "train" / name).read_bytes() == (data / name).read_bytes()
