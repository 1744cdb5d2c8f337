"""Prompts and per-image seeds: every synthetic image is reproducible from its slot alone."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """One image to generate: class, index within the class, seed and prompts."""

    label: str
    index: int
    seed: int
    prompt: str
    negative_prompt: str

    @property
    def slot_id(self) -> str:
        return f"{self.label}-{self.index:06d}"


def slot_seed(seed: int, label: str, index: int) -> int:
    """A 31-bit seed derived from (run seed, class, index): independent of order and sharding."""
    digest = hashlib.sha256(f"{seed}:{label}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def build_prompt(template: str, expression: str, emotion: str, style: str) -> str:
    """Fill the template's ``{expression}``, ``{emotion}`` and ``{style}`` fields."""
    return " ".join(template.format(expression=expression, emotion=emotion, style=style).split())


def make_slots(
    label: str,
    start: int,
    count: int,
    *,
    seed: int,
    template: str,
    expressions: Mapping[str, str],
    styles: Sequence[str],
    negative_prompt: str,
) -> list[Slot]:
    """Slots ``start .. start + count - 1`` of a class; styles cycle with the index."""
    return [
        Slot(
            label,
            i,
            slot_seed(seed, label, i),
            build_prompt(template, expressions[label], label, styles[i % len(styles)]),
            negative_prompt,
        )
        for i in range(start, start + count)
    ]
