"""Generation rounds with quality control: resumable, shardable, deterministic for a seed.

Each round generates ``ceil(deficit * oversample)`` new slots for every class still short of its
need, then all candidates are judged in a fixed order (round, class, index). Candidates are
stored as they are made, so a killed run resumes where it stopped, and because every decision
depends only on the stored records, the accepted set is identical to an uninterrupted run's.
Under ``torchrun`` the ranks split each round's missing blocks of slots; every image has its own
seeded generator and blocks have a fixed composition, so the result does not depend on the
number of workers.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from emotion.core.distributed import DistContext, barrier
from emotion.core.hashing import settings_key
from emotion.data.neardup import HammingIndex, phash
from emotion.synthesize.params import SynthParams
from emotion.synthesize.prompts import Slot, make_slots
from emotion.synthesize.quality import (
    FACE_SCORE_FLOOR,
    Measurement,
    face_crop,
    measure,
    rejection_reason,
)
from emotion.synthesize.store import SlotStore
from emotion.vision.facedetect import FaceDetector
from emotion.vision.params import CropParams

#: Rejection reasons, in the order the checks run.
REASONS = (
    "no_face",
    "multiple_faces",
    "small_face",
    "blurry",
    "near_duplicate_real",
    "near_duplicate_synthetic",
    "class_cap",
)

ImageSource = Callable[[Sequence[Slot]], list[Image.Image]]


def generation_settings(
    params: SynthParams, crop: CropParams, identity: Mapping[str, Any], output_size: int
) -> dict[str, Any]:
    """Everything that determines an image: runs share a generation cache only when equal."""
    return {
        "seed": params.seed,
        "prompt_template": params.prompt_template,
        "expressions": params.expressions,
        "styles": params.styles,
        "negative_prompt": params.negative_prompt,
        "face_margin": crop.face_margin,
        "output_size": output_size,
        "identity": dict(identity),
        "face_score_floor": FACE_SCORE_FLOOR,
    }


@dataclass(frozen=True)
class Decision:
    record: dict[str, Any]
    reason: str | None  # None: accepted

    @property
    def accepted(self) -> bool:
        return self.reason is None


class Synthesizer:
    """Runs generation rounds into a :class:`SlotStore` and judges the candidates."""

    def __init__(
        self,
        params: SynthParams,
        store: SlotStore,
        source: ImageSource,
        detector: FaceDetector,
        *,
        crop: CropParams,
        identity: Mapping[str, Any],
        output_size: int,
        ctx: DistContext | None = None,
        progress: bool = True,
    ) -> None:
        """``identity``: what else determines an image (model, revision, steps, dtype...)."""
        self.params, self.store, self.source, self.detector = params, store, source, detector
        self.identity, self.output_size = dict(identity), output_size
        self.crop = crop
        self.batch_size = params.batch_size
        self.ctx = ctx or DistContext()
        self.progress = progress

    # ----------------------------------------------------------------- identity

    def slots(self, label: str, start: int, count: int) -> list[Slot]:
        p = self.params
        return make_slots(
            label,
            start,
            count,
            seed=p.seed,
            template=p.prompt_template,
            expressions=p.expressions,
            styles=p.styles,
            negative_prompt=p.negative_prompt,
        )

    def key(self, slot: Slot) -> str:
        """The cache key of one slot's image and measurements."""
        return settings_key(
            {
                **self.identity,
                "prompt": slot.prompt,
                "negative_prompt": slot.negative_prompt,
                "seed": slot.seed,
                "face_margin": self.crop.face_margin,
                "output_size": self.output_size,
                "face_score_floor": FACE_SCORE_FLOOR,
            }
        )

    # ----------------------------------------------------------------- generation

    def _record(
        self, slot: Slot, round_: int, image: Image.Image, seconds: float
    ) -> dict[str, Any]:
        m = measure(image, self.detector, self.crop.face_margin)
        crop = None
        if m.faces:
            crop = face_crop(image, m.faces[0], self.crop.face_margin, self.output_size)
        data = {
            "slot_id": slot.slot_id,
            "label": slot.label,
            "index": slot.index,
            "round": round_,
            "seed": slot.seed,
            "prompt": slot.prompt,
            "negative_prompt": slot.negative_prompt,
            **self.identity,
            "key": self.key(slot),
            **m.to_record(),
            "phash": f"{phash(crop):016x}" if crop is not None else None,
            "seconds": round(seconds, 6),
        }
        return self.store.put(slot.label, slot.index, data, crop)

    def ensure(self, slots: Sequence[Slot], round_: int) -> int:
        """Generate and measure the slots not in the store; returns how many this rank made.

        Slots are batched in fixed blocks of the round's list, and a block with any slot
        missing is generated whole: batched GPU/CPU kernels differ in the last bit with batch
        composition, so fixed blocks are what makes resumed and sharded runs bit-identical.
        """
        size = self.batch_size
        blocks = [slots[i : i + size] for i in range(0, len(slots), size)]
        missing = [
            b
            for b in blocks
            if any(self.store.get(s.label, s.index, self.key(s)) is None for s in b)
        ]
        barrier(self.ctx)  # every rank has listed the same missing blocks before any is written
        mine = missing[self.ctx.rank :: self.ctx.world]
        bar = tqdm(
            total=sum(map(len, mine)),
            desc=f"synthesize round {round_ + 1}",
            unit="img",
            disable=not self.progress or None,
        )
        passed = done = 0
        for batch in mine:
            start = time.perf_counter()
            images = self.source(batch)
            per_image = (time.perf_counter() - start) / len(batch)
            for slot, image in zip(batch, images, strict=True):
                record = self._record(slot, round_, image, per_image)
                passed += self._image_reason(record) is None
                done += 1
            bar.update(len(batch))
            bar.set_postfix(qc_pass=f"{passed / max(done, 1):.0%}")
        bar.close()
        barrier(self.ctx)
        return done

    def _image_reason(self, record: Mapping[str, Any]) -> str | None:
        return rejection_reason(
            Measurement.from_record(record),
            self.params.min_face_confidence,
            self.params.min_face_size,
            self.params.min_sharpness,
        )

    # ------------------------------------------------------------------- judging

    def decide(
        self, records: Sequence[Mapping[str, Any]], needs: Mapping[str, int], real: HammingIndex
    ) -> list[Decision]:
        """Judge candidates in order: image checks, near-duplicates, then the class cap."""
        accepted: Counter[str] = Counter()
        synthetic = HammingIndex(self.params.phash_min_distance)
        decisions = []
        for rec in records:
            reason = self._image_reason(rec)
            if reason is None:
                code = int(rec["phash"], 16)
                if real.contains_near(code):
                    reason = "near_duplicate_real"
                elif synthetic.contains_near(code):
                    reason = "near_duplicate_synthetic"
                elif accepted[rec["label"]] >= needs.get(rec["label"], 0):
                    reason = "class_cap"
                else:
                    accepted[rec["label"]] += 1
                    synthetic.add(code)
            decisions.append(Decision(dict(rec), reason))
        return decisions

    def run(
        self,
        needs: Mapping[str, int],
        real_codes: np.ndarray,
        oversample: float,
        max_rounds: int,
    ) -> list[Decision]:
        """Generate until every class has its need accepted or ``max_rounds`` is spent."""
        real = HammingIndex(self.params.phash_min_distance)
        for code in real_codes:
            real.add(int(code))
        slots: list[tuple[Slot, int]] = []
        made: Counter[str] = Counter()
        for round_ in range(max_rounds):
            decisions = self.decide(self._records(slots), needs, real)
            have = Counter(d.record["label"] for d in decisions if d.accepted)
            new = []
            for label, need in needs.items():
                deficit = need - have[label]
                if deficit > 0:
                    count = math.ceil(deficit * oversample)
                    new += self.slots(label, made[label], count)
                    made[label] += count
            if not new:
                break
            self.ensure(new, round_)
            slots += [(s, round_) for s in new]
        return self.decide(self._records(slots), needs, real)

    def _records(self, slots: Sequence[tuple[Slot, int]]) -> list[dict[str, Any]]:
        records = []
        for slot, round_ in slots:
            rec = self.store.get(slot.label, slot.index, self.key(slot))
            if rec is None:
                raise RuntimeError(f"slot {slot.slot_id} missing from {self.store.root}")
            records.append({**rec.data, "round": round_})
        return records
