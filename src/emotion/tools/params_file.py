"""The whole ``params.yaml``: every section, and which sections each DVC stage reads.

For ``emotion check``, profiles and tests. Stage scripts never import this module: each imports
only its own sections' schemas (see :func:`emotion.core.config.load_sections`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import model_validator

from emotion.core.config import PARAMS_FILE, Section, leaf_keys, read_yaml, validate
from emotion.data.params import BalanceParams, IngestParams, SplitParams
from emotion.demo_data.params import DemoDataParams
from emotion.explain.params import ExplainParams
from emotion.export.params import ExportParams
from emotion.regions.params import RegionsParams
from emotion.synthesize.params import SynthParams
from emotion.training.params import EvaluateParams, ModelParams, TrainParams
from emotion.vision.params import CropParams


class Params(Section):
    """The whole ``params.yaml``."""

    demo_data: DemoDataParams
    ingest: IngestParams
    split: SplitParams
    balance: BalanceParams
    crop: CropParams
    synth: SynthParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    regions: RegionsParams
    explain: ExplainParams
    export: ExportParams

    @model_validator(mode="after")
    def _check_classes(self) -> Params:
        """Sections naming classes agree with ``ingest.classes``, the one list of them."""
        self.synth.check_classes(self.ingest.classes)
        return self


#: Which params each DVC stage reads: whole sections, or single ``section.key`` entries of another
#: stage's section. ``dvc.yaml`` must declare exactly their leaf keys.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "demo_data": ("demo_data",),
    "ingest": ("ingest",),
    "balance": ("split", "balance"),
    "assets": (),
    "synthesize": ("synth", "crop"),
    "train": ("model", "train"),
    "evaluate": ("evaluate", "ingest.aliases", "ingest.drop"),
    "regions": ("regions",),
    "explain": ("explain",),
    "export": ("export", "crop"),
}


def validate_params(data: Mapping[str, Any], source: str = PARAMS_FILE) -> Params:
    """Validate a whole params mapping, raising :class:`~emotion.core.errors.ConfigError`."""
    return validate(Params, data, source)


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Load and validate a whole params file."""
    return validate_params(read_yaml(path), str(path))


def all_leaf_keys() -> list[str]:
    """Every dotted key of ``params.yaml``."""
    return list(leaf_keys(Params))


def stage_leaf_keys(stage: str) -> set[str]:
    """The dotted params keys a stage reads (all leaves of its sections, and its single keys)."""
    keys: set[str] = set()
    for entry in STAGE_SECTIONS[stage]:
        section, _, key = entry.partition(".")
        schema: type[Section] = Params.model_fields[section].annotation  # type: ignore[assignment]
        keys.update(k for k in leaf_keys(schema, f"{section}.") if not key or k == entry)
    return keys


def load_section(name: str, path: str | Path = PARAMS_FILE, /, **overrides: Any) -> Section:
    """Section ``name`` of a params file with ``overrides`` applied, validated like the file.

    For benchmarks and tests that need, e.g., the ``model`` section with another backbone.
    """
    base = getattr(load_params(path), name)
    return validate(type(base), {**base.model_dump(), **overrides}, f"{path} [{name}]")
