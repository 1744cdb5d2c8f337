"""Dataset cards (``datasets/*.yaml``): what a model learned from, carried with the model.

The export stage copies the card named by ``export.data_card`` into ``model.json``
(``source.training_data``), so the server, both pages and the model card say what data the
served model was trained on, and whether it has seen photos at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from emotion.core.config import read_yaml, validate


class DataCard(BaseModel):
    """A dataset's name, what it holds, where it comes from, on what terms, how to cite it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    photos: bool  #: false: not photographs of people (a model trained on it is not for photos)
    description: str
    source: str
    terms: str
    citation: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> DataCard:
        """The card at ``path``; ConfigError naming the file and field on any problem."""
        return validate(cls, read_yaml(path), str(path))

    def summary(self) -> str:
        """One line for pages and logs: what the model was trained on."""
        if self.photos:
            return f"Trained on {self.title} (photos of faces)."
        return f"Trained on {self.title}: not photos of people; not meant for photos."

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_dump(), "summary": self.summary()}
