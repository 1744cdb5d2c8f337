"""Configuration profiles: overlays applied to ``params.yaml`` in place.

``params.yaml`` as committed is the default (the demo profile). A profile in ``profiles/`` holds
only dotted keys to change, optionally on top of another profile::

    extends: fer2013-cpu   # optional: another overlay applied first
    set:                   # dotted keys to override (each must already exist)
      ingest.source: data/external/fer2013

Applying keeps the file's comments, validates the result and writes a first-line marker naming
the profile. A different profile is refused on an already-profiled file unless forced: keys the
first profile set and the second does not would silently keep the first one's values. Back to the
defaults: ``git restore params.yaml``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from emotion.core.atomic import write_text
from emotion.core.config import PARAMS_FILE, parse_yaml, read_yaml
from emotion.core.errors import ConfigError
from emotion.tools.params_file import validate_params

PROFILES_DIR = Path("profiles")
MARKER = "# profile: "
Overlay = tuple[Mapping[str, Any], str]  #: (dotted key -> value, where it came from)


def _yaml() -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 100
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return rt


def available(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    """Names of the profiles in ``profiles_dir``."""
    return sorted(p.stem for p in profiles_dir.glob("*.yaml"))


def applied_profile(text: str) -> str | None:
    """The profile named by a params file's first-line marker, if any."""
    first = text.split("\n", 1)[0]
    return first.removeprefix(MARKER).split(" ", 1)[0] if first.startswith(MARKER) else None


def overlay_chain(name: str, profiles_dir: Path = PROFILES_DIR) -> list[Overlay]:
    """The ``set:`` mappings of profile ``name`` and the profiles it extends, base first."""
    chain: list[Overlay] = []
    seen: list[str] = []
    while name:
        path = profiles_dir / f"{name}.yaml"
        if name in seen:
            raise ConfigError(f"{path}: profile inheritance loop {' -> '.join([*seen, name])}")
        if not path.is_file():
            raise ConfigError(
                f"unknown profile '{name}'; available: {available(profiles_dir)} (the defaults"
                f" are {PARAMS_FILE} itself: `git restore {PARAMS_FILE}` returns to them)"
            )
        data = read_yaml(path)
        extra = sorted(set(data) - {"extends", "set"})
        if extra:
            raise ConfigError(f"{path}: a profile takes only 'extends' and 'set', not {extra}")
        chain.insert(0, (data.get("set") or {}, str(path)))
        seen.append(name)
        name = str(data.get("extends") or "")
    return chain


def set_key(doc: Any, dotted: str, value: Any, where: str) -> None:
    """Set an existing dotted key in a ruamel document, keeping comments."""
    node = doc
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            known = list(node) if isinstance(node, Mapping) else []
            raise ConfigError(
                f"{where}: key '{'.'.join(parts[: i + 1])}' does not exist in {PARAMS_FILE}"
                f" (known here: {known})"
            )
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def apply(base_text: str, overlays: Iterable[Overlay], source: str) -> str:
    """``base_text`` (params YAML) with every overlay's keys set; validated, comments kept."""
    parse_yaml(base_text, source)  # names a duplicate key or bad syntax with its line
    doc = _yaml().load(base_text)
    for keys, where in overlays:
        for key, value in keys.items():
            set_key(doc, str(key), value, where)
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    text = buf.getvalue()
    validate_params(parse_yaml(text, source), source)
    return text


def render(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    params: Path = Path(PARAMS_FILE),
    profiles_dir: Path = PROFILES_DIR,
    *,
    force: bool = False,
) -> str:
    """The text of ``params`` with profile ``name`` (then ``overrides``) applied."""
    text = params.read_text(encoding="utf-8")
    current = applied_profile(text)
    if current not in (None, name) and not force:
        raise ConfigError(
            f"{params} already has profile '{current}' applied; restore the defaults first"
            f" (`git restore {params}`) or pass --force to apply '{name}' on top of it"
        )
    if current is not None:
        text = text.split("\n", 1)[1]
    overlays = [*overlay_chain(name, profiles_dir), (overrides or {}, "--set")]
    body = apply(text, overlays, f"{params} + profile '{name}'")
    label = name if current in (None, name) else f"{name} (on top of {current})"
    return f"{MARKER}{label} — `git restore {params}` returns to the defaults\n{body}"


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are YAML scalars/lists (``3``, ``true``, ``[1, 2]``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        if key in out:
            raise ConfigError(f"--set {key} is given twice; keep one of them")
        out[key] = parse_yaml(raw, f"--set {key}") if raw.strip() else ""
    return out


def use(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    params: Path = Path(PARAMS_FILE),
    profiles_dir: Path = PROFILES_DIR,
    *,
    force: bool = False,
) -> str:
    """Apply profile ``name`` to ``params`` (atomically) and return the text written."""
    text = render(name, overrides, params, profiles_dir, force=force)
    write_text(params, text)
    return text
