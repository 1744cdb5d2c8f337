"""Loading ``params.yaml`` sections with clear error messages; the types sections share.

Every key is required and typed: a missing, misspelt or ill-typed key fails at stage start with
a message naming the key and the expected type. Each package's ``params.py`` holds the schemas
of its stages' sections, and a stage imports only those, so editing one schema stales only the
stages that read it. The whole file: :mod:`emotion.tools.params_file`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from emotion.core.errors import ConfigError

PARAMS_FILE = "params.yaml"
M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """A params section: strict types, no unknown keys, no defaults."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeFloat = Annotated[float, Field(ge=0.0)]
Range = Annotated[list[float], Field(min_length=2, max_length=2)]


def check_range(name: str, values: list[float], low: float, high: float) -> None:
    """Raise ``ValueError`` unless ``low <= values[0] <= values[1] <= high``."""
    lo, hi = values
    if not low <= lo <= hi <= high:
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {values}")


# --------------------------------------------------------------------------- loading


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML 1.2 forbids it,
    PyYAML keeps the last silently, and DVC refuses such a params file as corrupted)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in first:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    first[key].start_mark,
                    f"found key {key!r} a second time; keep one of them",
                    key_node.start_mark,
                )
            first[key] = key_node
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text (duplicate keys refused), naming ``source`` in any error."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file in any error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def validate(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """Validate ``data`` against ``model``, raising :class:`ConfigError` naming every problem."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        lines = [_describe_error(err, model) for err in exc.errors()]
        raise ConfigError(
            f"{source}: {len(lines)} invalid setting(s):\n  - " + "\n  - ".join(lines)
        ) from None


def load_sections(path: str | Path = PARAMS_FILE, **sections: type[Section]) -> Any:
    """The named sections of a params file, each validated by its schema; nothing else.

    ``load_sections(path, model=ModelParams, train=TrainParams)`` returns an object with the
    attributes ``model`` and ``train``. Other sections are not read (``emotion check`` validates
    the whole file).
    """
    data = read_yaml(path)
    fields = {name: (schema, ...) for name, schema in sections.items()}
    picked = create_model("StageSections", __base__=Section, **fields)  # type: ignore[call-overload]
    subset = {name: data[name] for name in sections if name in data}
    return validate(picked, subset, str(path))


# --------------------------------------------------------------------------- introspection


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def leaf_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Yield the dotted leaf keys of a schema (what DVC stages declare as params)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if _is_section(field.annotation):
            yield from leaf_keys(field.annotation, f"{key}.")
        else:
            yield key


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


def _field_for(loc: tuple[Any, ...], root: type[BaseModel]) -> Any:
    model: Any = root
    field = None
    for part in loc:
        if not _is_section(model) or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        model = field.annotation
    return field


def _closest_key(loc: tuple[Any, ...], root: type[BaseModel]) -> str | None:
    parent = _field_for(loc[:-1], root) if len(loc) > 1 else None
    model = parent.annotation if parent is not None else (root if len(loc) == 1 else None)
    if not _is_section(model):
        return None
    match = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return match[0] if match else None


def _describe_error(err: Mapping[str, Any], root: type[BaseModel]) -> str:
    loc = tuple(p for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-"))
    key = ".".join(str(p) for p in loc) or "<top level>"
    field = _field_for(loc, root)
    expected = describe_type(field.annotation, list(field.metadata)) if field else None
    kind = err["type"]
    if kind == "missing":
        return f"missing key '{key}' (expected {expected})"
    if kind == "extra_forbidden":
        guess = _closest_key(loc, root)
        hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), guess])}'?" if guess else ""
        return f"unknown key '{key}'{hint}"
    msg = err["msg"].removeprefix("Value error, ")
    got = f"; got {err['input']!r}" if kind != "value_error" else ""
    want = f" (expected {expected})" if expected and kind != "value_error" else ""
    return f"key '{key}': {msg}{got}{want}"
