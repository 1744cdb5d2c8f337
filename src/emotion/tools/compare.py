"""Compare experiments: DVC's experiments table with every headline metric and the changed params.

    emotion compare [dvc exp show options, e.g. -n 5 or --sort-by f1]

runs ``dvc exp show --only-changed --keep '^(<headline names>)$' --drop
'Created|State|Executor|.*/' --no-pager``. The headline names are the keys of the workspace's
``metrics/*.json``; ``--only-changed`` leaves out every param (and metric) that is the same in
all rows, and ``--keep`` brings the headline metrics back, so the table shows all of them and
only the params an experiment changed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from emotion.core.errors import DataError
from emotion.core.reading import read_json
from emotion.tools.executables import tool

METRICS_DIR = "metrics"
#: Columns left out: when each row was created and how a queued one ran (DVC's own), and the
#: stages' file dependencies (named by path), whose hashes change with every trained model.
DROPPED = "Created|State|Executor|.*/"


def headline_names(project: Path = Path()) -> list[str]:
    """The headline metric names the workspace's metrics files hold, sorted."""
    names: set[str] = set()
    for path in sorted((project / METRICS_DIR).glob("*.json")):
        names |= set(read_json(path, "metrics file", "rerun `dvc repro`"))
    if not names:
        raise DataError(f"no metrics in {project / METRICS_DIR}: run `dvc repro` first")
    return sorted(names)


def compare_command(project: Path = Path(), extra: Sequence[str] = ()) -> list[str]:
    """The ``dvc exp show`` command line :mod:`this module <emotion.tools.compare>` runs."""
    keep = "^(" + "|".join(headline_names(project)) + ")$"
    show = ["exp", "show", "--only-changed", "--keep", keep, "--drop", DROPPED, "--no-pager"]
    return [tool("dvc"), *show, *extra]


def compare(project: Path = Path(), extra: Sequence[str] = ()) -> int:
    """Print the comparison table; returns DVC's exit status."""
    return subprocess.call(compare_command(project, extra), cwd=project)
