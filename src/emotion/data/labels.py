"""Map raw dataset label names onto the product's classes (aliases, dropped classes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from emotion.core.errors import DataError


@dataclass(frozen=True)
class LabelMap:
    """Resolves raw names case-insensitively: a class, an alias of one, or a dropped name."""

    classes: Sequence[str]
    aliases: Mapping[str, str] = field(default_factory=dict)
    drop: Iterable[str] = ()

    def __post_init__(self) -> None:
        table: dict[str, str | None] = {c.lower(): c for c in self.classes}
        table.update({a.lower(): t for a, t in self.aliases.items()})
        table.update({d.lower(): None for d in self.drop})
        object.__setattr__(self, "_table", table)

    def known(self, raw: str) -> bool:
        """Whether ``raw`` is a class, alias or dropped name."""
        return raw.lower() in self._table  # type: ignore[attr-defined]

    def resolve(self, raw: str) -> str | None:
        """The class for ``raw``, or ``None`` when it is dropped. Unknown names raise KeyError."""
        return self._table[raw.lower()]  # type: ignore[attr-defined]

    def check_known(self, examples: Mapping[str, str], what: str = "class folder") -> None:
        """Raise a :class:`DataError` listing every unknown raw name (with an example path)."""
        unknown = {raw: ex for raw, ex in examples.items() if not self.known(raw)}
        if not unknown:
            return
        listed = "; ".join(f"'{raw}' (e.g. {ex})" for raw, ex in sorted(unknown.items()))
        raise DataError(
            f"unknown {what}(s): {listed}. Known classes: {list(self.classes)}; "
            f"aliases: {dict(self.aliases)}; dropped: {sorted(self.drop)}. "
            "Map it with ingest.aliases or skip it with ingest.drop in params.yaml."
        )
