"""Params section ``ingest``: raw dataset import, verification and EDA (stage ``ingest``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from emotion.config import Section


class IngestParams(Section):
    """Raw dataset import, verification and EDA (stage ``ingest``)."""

    source: str
    classes: list[str]
    aliases: dict[str, str]
    drop: list[str]
    on_corrupt: Literal["fail", "skip"]
    samples_per_class: Annotated[int, Field(ge=1, le=32)]

    @model_validator(mode="after")
    def _check(self) -> IngestParams:
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError("classes must list at least two distinct names")
        bad_targets = sorted({t for t in self.aliases.values() if t not in self.classes})
        if bad_targets:
            raise ValueError(f"aliases map to names that are not in classes: {bad_targets}")
        clash = sorted(set(self.drop) & set(self.classes))
        if clash:
            raise ValueError(f"drop lists names that are also classes: {clash}")
        return self
