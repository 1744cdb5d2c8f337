"""A stage's results: headline metrics for DVC's tables and the full report beside them.

``dvc metrics show`` and ``dvc exp show`` give every key of every declared metrics file its own
column, so the pipeline declares only a few short-named headline scalars as metrics
(``metrics/<stage>.json``; a stage whose figures are all detail has none), and each stage writes
everything it measured to a committed report (``reports/<stage>.json``). A report's ``rows`` (one
record per class, method or runtime) are the table ``dvc plots show`` draws for it; the PR
report and the docs read the rest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from emotion.core.atomic import write_json
from emotion.core.errors import EmotionError

#: Headline metric name -> dotted key of the report it copies. Names are lower-case words joined
#: by ``_`` and never hold a dot (params are ``section.key``), so ``dvc exp show --keep
#: '^[a-z0-9_]+$'`` keeps every headline column while ``--only-changed`` drops unchanged params.
Headline = Mapping[str, str]
NAME = re.compile(r"^[a-z0-9_]+$")

#: Significant digits a headline figure keeps: enough to compare runs, short in a table.
DIGITS = 4


def lookup(report: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in a nested mapping."""
    value: Any = report
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise EmotionError(f"report has no key {dotted!r} for a headline metric")
        value = value[part]
    return value


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}")
    return value


def plottable(value: Any) -> Any:
    """``value`` with every empty list written as ``None``: DVC reads a report declared as a plot
    looking for lists of records, and an empty list anywhere makes its reader fail."""
    if isinstance(value, Mapping):
        return {k: plottable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plottable(v) for v in value] if value else None
    return value


def headline(report: Mapping[str, Any], keys: Headline) -> dict[str, Any]:
    """The headline metrics of ``report``: ``keys`` looked up, floats to :data:`DIGITS` digits."""
    bad = [name for name in keys if not NAME.match(name)]
    if bad:
        raise EmotionError(f"headline metric names must match {NAME.pattern}: {bad}")
    return {name: _short(lookup(report, dotted)) for name, dotted in keys.items()}


def write_results(
    report: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    report_path: str | os.PathLike[str],
    metrics_path: str | os.PathLike[str],
    keys: Headline,
) -> dict[str, Any]:
    """Write ``report`` (see :func:`write_report`) and its headline metrics; returns them."""
    figures = headline(report, keys)
    write_report(report, rows, report_path)
    write_json(metrics_path, figures)
    return figures


def write_report(
    report: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]
) -> None:
    """Write ``report`` with its ``rows`` table (empty lists as ``None``, see :func:`plottable`):
    a stage whose figures are all detail has a report and no headline."""
    if "rows" in report:
        raise EmotionError("a report's own keys must not include 'rows' (the plotted table)")
    write_json(path, plottable({**report, "rows": [dict(r) for r in rows]}))
