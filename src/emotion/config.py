"""Typed schema for ``params.yaml`` and per-stage loading with clear error messages.

Every key is required and typed: a missing, misspelt or ill-typed key fails at stage start with
a message naming the key and the expected type. Each DVC stage reads only the sections listed in
:data:`STAGE_SECTIONS`, and ``dvc.yaml`` declares exactly their leaf keys (a test checks this).
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from emotion import CLASSES
from emotion.errors import ConfigError

PARAMS_FILE = "params.yaml"


class Section(BaseModel):
    """A params section: strict types, no unknown keys, no defaults."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeFloat = Annotated[float, Field(ge=0.0)]
Range = Annotated[list[float], Field(min_length=2, max_length=2)]


def _check_range(name: str, values: list[float], low: float, high: float) -> None:
    lo, hi = values
    if not low <= lo <= hi <= high:
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {values}")


class DemoDataParams(Section):
    """Procedural demo face dataset (stage ``demo_data``)."""

    seed: int
    count: PositiveInt
    image_size: Annotated[int, Field(ge=32, le=512)]
    class_proportions: dict[str, float]
    jpeg_fraction: Probability
    jpeg_quality: Annotated[int, Field(ge=30, le=100)]
    expression_spread: NonNegativeFloat
    max_rotation_deg: Annotated[float, Field(ge=0.0, le=45.0)]
    max_shift: Annotated[float, Field(ge=0.0, le=0.3)]
    scale_range: Range
    noise_std_max: NonNegativeFloat
    blur_max: NonNegativeFloat
    occlusion_prob: Probability

    @model_validator(mode="after")
    def _check(self) -> DemoDataParams:
        unknown = sorted(set(self.class_proportions) - set(CLASSES))
        missing = sorted(set(CLASSES) - set(self.class_proportions))
        if unknown or missing:
            raise ValueError(
                f"class_proportions must name exactly the classes {list(CLASSES)}"
                f" (unknown: {unknown}, missing: {missing})"
            )
        if any(p < 0 for p in self.class_proportions.values()):
            raise ValueError("class_proportions must be non-negative")
        total = sum(self.class_proportions.values())
        if not math.isclose(total, 1.0, abs_tol=1e-3):
            raise ValueError(f"class_proportions must sum to 1 (they sum to {total:.4f})")
        _check_range("scale_range", self.scale_range, 0.3, 2.0)
        return self


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


class SplitParams(Section):
    """Train/val/test split (stage ``balance``), grouped by exact and near-duplicate images."""

    mode: Literal["predefined", "stratified"]
    seed: int
    train_ratio: Annotated[float, Field(gt=0.0, lt=1.0)]
    val_ratio: Annotated[float, Field(ge=0.0, lt=1.0)]
    test_ratio: Annotated[float, Field(ge=0.0, lt=1.0)]
    phash_radius: Annotated[int, Field(ge=0, le=16)]
    drop_cross_split_duplicates: bool

    @model_validator(mode="after")
    def _check(self) -> SplitParams:
        total = self.train_ratio + self.val_ratio + self.test_ratio
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train_ratio + val_ratio + test_ratio must be 1 (got {total:.4f})")
        return self


class BalanceParams(Section):
    """Training-split oversampling with augmented variants (stage ``balance``)."""

    seed: int
    strategy: Literal["max", "mean", "none"] | Annotated[int, Field(ge=1)]
    max_variants_per_image: Annotated[int, Field(ge=0)]
    tolerance: Annotated[float, Field(ge=0.0, le=0.5)]
    image_size: Annotated[int, Field(ge=8, le=1024)] | None
    hflip_prob: Probability
    vflip_prob: Probability
    rotation_deg: Annotated[float, Field(ge=0.0, le=180.0)]
    brightness: Range
    contrast: Range
    sharpness: Range

    @model_validator(mode="after")
    def _check(self) -> BalanceParams:
        _check_range("brightness", self.brightness, 0.0, 3.0)
        _check_range("contrast", self.contrast, 0.0, 3.0)
        _check_range("sharpness", self.sharpness, 0.0, 3.0)
        return self


class ModelParams(Section):
    """Backbone and head (stage ``train``)."""

    name: str
    pretrained: bool
    pretrained_file: str | None
    in_chans: Literal[1, 3]
    image_size: Annotated[int, Field(ge=16, le=1024)]
    head_hidden: PositiveInt
    head_dropout: Annotated[float, Field(ge=0.0, lt=1.0)]


class TrainParams(Section):
    """Optimisation recipe and online augmentation (stage ``train``)."""

    launcher: str
    seed: int
    epochs: PositiveInt
    batch_size: Annotated[int, Field(ge=2, multiple_of=2)]
    freeze_backbone_epochs: Annotated[int, Field(ge=0)]
    backbone_lr: Annotated[float, Field(gt=0.0)]
    head_lr: Annotated[float, Field(gt=0.0)]
    weight_decay: NonNegativeFloat
    warmup_epochs: NonNegativeFloat
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)]
    mixup_alpha: NonNegativeFloat
    grad_clip: NonNegativeFloat
    ema_decay: Annotated[float, Field(ge=0.0, lt=1.0)]
    class_weights: bool
    amp: Literal["auto", "off", "bf16", "fp16"]
    patience: PositiveInt
    aug_hflip: Probability
    aug_rotation_deg: Annotated[float, Field(ge=0.0, le=180.0)]
    aug_scale: Range
    aug_translate: Annotated[float, Field(ge=0.0, le=0.5)]
    aug_brightness: Annotated[float, Field(ge=0.0, lt=1.0)]
    aug_contrast: Annotated[float, Field(ge=0.0, lt=1.0)]
    aug_erasing_prob: Probability

    @model_validator(mode="after")
    def _check(self) -> TrainParams:
        _check_range("aug_scale", self.aug_scale, 0.1, 4.0)
        if self.freeze_backbone_epochs >= self.epochs:
            raise ValueError("freeze_backbone_epochs must be smaller than epochs")
        return self


class EvaluateParams(Section):
    """Test-set evaluation (stage ``evaluate``)."""

    batch_size: PositiveInt
    tta_flip: bool
    calibration_bins: Annotated[int, Field(ge=2, le=100)]


ExplainMethod = Literal["gradcam", "gradcam_pp", "shap", "lime"]


class ExplainParams(Section):
    """Explanations and their checks (stage ``explain``)."""

    per_class: Annotated[int, Field(ge=1, le=64)]
    methods: Annotated[list[ExplainMethod], Field(min_length=1)]
    target_layer: str
    seed: int
    shap_background: Annotated[int, Field(ge=1)]
    shap_nsamples: PositiveInt
    lime_samples: Annotated[int, Field(ge=10)]
    lime_segments: Annotated[int, Field(ge=2)]
    curve_steps: Annotated[int, Field(ge=2, le=200)]
    sanity_threshold: Annotated[float, Field(gt=-1.0, le=1.0)]


class SynthParams(Section):
    """Stable Diffusion synthesis with quality control (stage ``synthesize``)."""

    enabled: bool
    launcher: str
    model_id: str
    revision: str | None
    target_total: Annotated[int, Field(ge=0)]
    max_synthetic_fraction: Annotated[float, Field(ge=0.0, lt=1.0)]
    oversample: Annotated[float, Field(ge=1.0, le=10.0)]
    max_rounds: Annotated[int, Field(ge=1, le=20)]
    seed: int
    steps: PositiveInt
    guidance_scale: NonNegativeFloat
    image_size: Annotated[int, Field(ge=32, le=1024, multiple_of=8)]
    batch_size: PositiveInt
    dtype: Literal["auto", "float32", "float16", "bfloat16"]
    prompt_template: str
    expressions: dict[str, str]
    styles: Annotated[list[str], Field(min_length=1)]
    negative_prompt: str
    face_model: str
    min_face_confidence: Probability
    min_face_size: Annotated[float, Field(ge=0.0, le=1.0)]
    face_margin: Annotated[float, Field(ge=0.0, le=1.0)]
    min_sharpness: NonNegativeFloat
    phash_min_distance: Annotated[int, Field(ge=0, le=32)]

    @model_validator(mode="after")
    def _check(self) -> SynthParams:
        missing = [c for c in CLASSES if c not in self.expressions]
        extra = sorted(set(self.expressions) - set(CLASSES))
        if missing or extra:
            raise ValueError(
                f"expressions needs one phrase per class {list(CLASSES)}; "
                f"missing {missing}, unknown {extra}"
            )
        for field in ("{expression}", "{emotion}"):
            if field not in self.prompt_template:
                raise ValueError(f"prompt_template must contain {field}")
        return self


class ExportParams(Section):
    """ONNX export, parity proof, int8 quantization and latency benchmark (stage ``export``)."""

    opset: Annotated[int, Field(ge=7)]
    fallback_opset: Annotated[int, Field(ge=7)]
    parity_atol: Annotated[float, Field(gt=0.0)]
    quantize: Literal["static", "dynamic"]
    per_channel: bool
    reduce_range: bool
    calibration_images: PositiveInt
    latency_runs: Annotated[int, Field(ge=10)]
    throughput_batch: PositiveInt
    face_margin: Annotated[float, Field(ge=0.0, le=1.0)]


class Params(Section):
    """The whole ``params.yaml``."""

    demo_data: DemoDataParams
    ingest: IngestParams
    split: SplitParams
    balance: BalanceParams
    synth: SynthParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    explain: ExplainParams
    export: ExportParams


#: Which params sections each DVC stage reads. ``dvc.yaml`` must declare all their leaf keys.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "demo_data": ("demo_data",),
    "ingest": ("ingest",),
    "balance": ("split", "balance"),
    "synthesize": ("synth",),
    "train": ("model", "train"),
    "evaluate": ("evaluate",),
    "explain": ("explain",),
    "export": ("export",),
}


# --------------------------------------------------------------------------- loading


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file in any error."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def validate_params(data: Mapping[str, Any], source: str = PARAMS_FILE) -> Params:
    """Validate a params mapping against the schema, raising :class:`ConfigError` on problems."""
    try:
        return Params.model_validate(dict(data))
    except ValidationError as exc:
        lines = [_describe_error(err, data) for err in exc.errors()]
        raise ConfigError(
            f"{source}: {len(lines)} invalid setting(s):\n  - " + "\n  - ".join(lines)
        ) from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Load and validate a whole params file."""
    return validate_params(read_yaml(path), str(path))


class StageParams:
    """The params sections one stage may read; any other section raises ``AttributeError``."""

    def __init__(self, stage: str, params: Params) -> None:
        self._stage = stage
        for section in STAGE_SECTIONS[stage]:
            setattr(self, section, getattr(params, section))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"stage '{self._stage}' does not declare params section '{name}';"
            f" add it to STAGE_SECTIONS and to the stage's params in dvc.yaml"
        )


def load_stage_params(stage: str, path: str | Path = PARAMS_FILE) -> Any:
    """Validate the params file and return only the sections that ``stage`` declares."""
    if stage not in STAGE_SECTIONS:
        raise ConfigError(f"unknown stage '{stage}'; known: {sorted(STAGE_SECTIONS)}")
    return StageParams(stage, load_params(path))


# --------------------------------------------------------------------------- introspection


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def leaf_keys(model: type[BaseModel] = Params, prefix: str = "") -> Iterator[str]:
    """Yield the dotted leaf keys of a schema (what DVC stages declare as params)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if _is_section(field.annotation):
            yield from leaf_keys(field.annotation, f"{key}.")
        else:
            yield key


def stage_leaf_keys(stage: str) -> set[str]:
    """The dotted params keys a stage reads (all leaves of its sections)."""
    keys: set[str] = set()
    for section in STAGE_SECTIONS[stage]:
        annotation = Params.model_fields[section].annotation
        keys.update(leaf_keys(annotation, f"{section}."))
    return keys


def describe_type(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A short human description of a field type, e.g. ``int >= 1`` or ``one of 'a', 'b'``."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        text = "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    elif origin is Annotated:
        base, *extra = typing.get_args(annotation)
        return describe_type(base, [*extra, *(metadata or [])])
    elif origin in (typing.Union, types.UnionType):
        text = " or ".join(describe_type(a) for a in typing.get_args(annotation))
    elif origin is not None:
        args = ", ".join(describe_type(a) for a in typing.get_args(annotation))
        text = f"{getattr(origin, '__name__', str(origin))}[{args}]"
    elif annotation is type(None):
        text = "null"
    elif _is_section(annotation):
        text = f"a mapping with keys {list(annotation.model_fields)}"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    bounds = []
    for meta in metadata or []:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                bounds.append(f"{op} {value}")
    return " ".join([text, *bounds]) if bounds else text


def _field_for(loc: tuple[Any, ...]) -> Any:
    model: Any = Params
    field = None
    for part in loc:
        if not _is_section(model) or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        model = field.annotation
    return field


def _closest_key(loc: tuple[Any, ...]) -> str | None:
    parent = _field_for(loc[:-1]) if len(loc) > 1 else None
    model = parent.annotation if parent is not None else (Params if len(loc) == 1 else None)
    if not _is_section(model):
        return None
    match = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return match[0] if match else None


def _describe_error(err: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-"))
    key = ".".join(str(p) for p in loc) or "<top level>"
    field = _field_for(loc)
    expected = describe_type(field.annotation, list(field.metadata)) if field else None
    kind = err["type"]
    if kind == "missing":
        return f"missing key '{key}' (expected {expected})"
    if kind == "extra_forbidden":
        guess = _closest_key(loc)
        hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), guess])}'?" if guess else ""
        return f"unknown key '{key}'{hint}"
    msg = err["msg"].removeprefix("Value error, ")
    got = f"; got {err['input']!r}" if kind != "value_error" else ""
    want = f" (expected {expected})" if expected and kind != "value_error" else ""
    return f"key '{key}': {msg}{got}{want}"
