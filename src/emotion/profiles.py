"""Named configuration profiles rendered into ``params.yaml``.

``profiles/demo.yaml`` is a complete params file; other profiles are overlays::

    extends: demo          # a profile to start from
    set:                   # dotted keys to override (each must already exist)
      ingest.source: data/external/fer2013

Rendering keeps the base file's comments, so ``params.yaml`` stays documented.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from emotion.atomic import write_text
from emotion.config import PARAMS_FILE
from emotion.errors import ConfigError
from emotion.params.file import validate_params

PROFILES_DIR = Path("profiles")


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


def _load(name: str, profiles_dir: Path) -> Any:
    path = profiles_dir / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile '{name}'; available: {available(profiles_dir)}")
    return _yaml().load(path.read_text(encoding="utf-8")), path


def set_key(doc: Any, dotted: str, value: Any, where: str) -> None:
    """Set an existing dotted key in a ruamel document, keeping comments."""
    node = doc
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            known = list(node) if isinstance(node, Mapping) else []
            raise ConfigError(
                f"{where}: key '{'.'.join(parts[: i + 1])}' does not exist in the base params"
                f" (known here: {known})"
            )
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def render(
    name: str, overrides: Mapping[str, Any] | None = None, profiles_dir: Path = PROFILES_DIR
) -> str:
    """Render profile ``name`` (plus ``overrides``) as validated params YAML text."""
    doc, path = _load(name, profiles_dir)
    chain = [(doc, path)]
    seen = {name}
    while isinstance(chain[-1][0], Mapping) and "extends" in chain[-1][0]:
        parent = str(chain[-1][0]["extends"])
        if parent in seen:
            raise ConfigError(f"{chain[-1][1]}: profile inheritance loop through '{parent}'")
        seen.add(parent)
        chain.append(_load(parent, profiles_dir))
    base, base_path = chain[-1]
    for overlay, overlay_path in reversed(chain[:-1]):
        extra = set(overlay) - {"extends", "set"}
        if extra:
            raise ConfigError(
                f"{overlay_path}: overlay profiles take only 'extends' and 'set',"
                f" not {sorted(extra)}"
            )
        for key, value in (overlay.get("set") or {}).items():
            set_key(base, str(key), value, str(overlay_path))
    for key, value in (overrides or {}).items():
        set_key(base, key, value, "--set")
    buf = io.StringIO()
    _yaml().dump(base, buf)
    text = buf.getvalue()
    validate_params(yaml.safe_load(text), f"profile '{name}' ({base_path} + overlays)")
    return text


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are YAML scalars/lists (``3``, ``true``, ``[1, 2]``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML: {exc}") from None
    return out


def use(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    target: Path = Path(PARAMS_FILE),
    profiles_dir: Path = PROFILES_DIR,
) -> str:
    """Write profile ``name`` to ``target`` (atomically) and return the text written."""
    text = render(name, overrides, profiles_dir)
    write_text(target, text)
    return text
