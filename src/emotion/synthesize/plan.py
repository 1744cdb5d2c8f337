"""How many synthetic images each class needs, under a per-class fraction cap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class ClassNeed:
    """One class's synthesis plan: ``need`` images on top of ``current`` ones."""

    label: str
    current: int
    target: int
    cap: int  # the most synthetic images the fraction cap allows
    need: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def equal_shares(total: int, n: int) -> list[int]:
    """``total`` split into ``n`` integer shares differing by at most one (first ones larger)."""
    base, extra = divmod(total, n)
    return [base + (i < extra) for i in range(n)]


def fraction_cap(current: int, max_fraction: float) -> int:
    """The largest ``s`` with ``s / (current + s) <= max_fraction`` (exact rational arithmetic)."""
    f = Fraction(max_fraction).limit_denominator(10**9)
    if f >= 1:
        raise ValueError(f"max_fraction must be < 1, got {max_fraction}")
    return int(f * current / (1 - f))  # floor: s <= f * current / (1 - f)


def plan_synthesis(
    counts: Mapping[str, int], classes: Sequence[str], target_total: int, max_fraction: float
) -> list[ClassNeed]:
    """Per-class needs toward ``target_total`` training images, shared equally over classes.

    A class never receives more synthetic images than ``max_fraction`` of its final size, and a
    class with no real images receives none (synthetic-only classes are not allowed).
    """
    plans = []
    for label, target in zip(classes, equal_shares(target_total, len(classes)), strict=True):
        current = int(counts.get(label, 0))
        cap = fraction_cap(current, max_fraction)
        plans.append(ClassNeed(label, current, target, cap, max(0, min(target - current, cap))))
    return plans
