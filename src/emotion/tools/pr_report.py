"""Pull-request report: what changed against a base git revision, as markdown.

Runs DVC's own ``metrics diff`` and ``params diff`` (metrics, reports and plot data are committed
with ``cache: false``, so nothing needs pulling and no stage is rerun): the headline metrics,
then the per-class, per-method and per-runtime detail of the stages' reports (``reports/``, read
by ``metrics diff --targets`` although they are declared as plots), and adds a per-class recall
table computed from the test confusion data at the base revision and in the workspace. A
provenance section names the head and base commits and checks that each commit's ``dvc.lock``
records the params its ``params.yaml`` holds. Optionally writes the HTML of ``dvc plots diff``
for CI artifacts.

    emotion report --base origin/main --out report.md --plots-dir report-plots
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from emotion.core.errors import EmotionError
from emotion.tools.executables import tool

CONFUSION = "plots/evaluate/confusion.csv"
LOCK = "dvc.lock"
PARAMS = "params.yaml"
#: Git-tracked paths the report is read from; uncommitted changes there are named in the report.
REPORTS = "reports"  #: each stage's full report (its headline figures are in metrics/)
RESULTS = ("dvc.yaml", LOCK, PARAMS, "metrics", REPORTS, "plots")

Confusion = Counter[tuple[str, str]]  # (actual, predicted) -> number of test images


@dataclass(frozen=True)
class Revision:
    """A git revision as the user named it, with its short commit hash."""

    name: str
    sha: str

    def __str__(self) -> str:
        return f"`{self.name}` ({self.sha})" if self.name != self.sha else f"`{self.sha}`"


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise EmotionError(f"`{cmd[0]}` not found: install it or run `make setup`") from None


def _git(project: Path, *args: str) -> str | None:
    """``git args`` output (stripped), or None when git fails."""
    done = _run(["git", *args], project)
    return done.stdout.strip() if done.returncode == 0 else None


def _dvc(project: Path, *args: str) -> str:
    cmd = [tool("dvc"), *args]
    done = _run(cmd, project)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise EmotionError(
            f"`dvc {' '.join(args)}` failed in {project.resolve()} (exit {done.returncode}): "
            f"{detail[-1] if detail else 'no output'}; check that it is a DVC project and run "
            "the same command by hand for the full message"
        )
    return done.stdout


def resolve(name: str, project: Path) -> Revision:
    """The commit ``name`` names; EmotionError if it is unknown or ``project`` is not in git."""
    if _git(project, "rev-parse", "--show-toplevel") is None:
        raise EmotionError(
            f"{project.resolve()} is not inside a git repository: run the report in a clone "
            "of the project"
        )
    sha = _git(project, "rev-parse", "--verify", "--quiet", "--short", f"{name}^{{commit}}")
    if sha is None:
        raise EmotionError(
            f"unknown git revision '{name}': pass an existing branch, tag or commit, or fetch it "
            "first (`git fetch origin main`; in CI check out with `fetch-depth: 0`)"
        )
    return Revision(name, sha)


def _head(project: Path) -> Revision:
    sha = _git(project, "rev-parse", "--short", "HEAD") or "no commit"
    branch = _git(project, "rev-parse", "--abbrev-ref", "HEAD")
    return Revision(branch if branch and branch != "HEAD" else sha, sha)


MISSING = object()  # a dotted key absent from params.yaml


@dataclass(frozen=True)
class Mismatch:
    """A param whose value in dvc.lock (the last run) differs from params.yaml."""

    stage: str
    key: str
    locked: Any
    current: Any

    def __str__(self) -> str:
        return (
            f"`{self.stage}`: `{self.key}` (dvc.lock {_value(self.locked)}, "
            f"params.yaml {_value(self.current)})"
        )


def _value(x: Any, width: int = 40) -> str:
    text = "missing" if x is MISSING else json.dumps(x, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def load_yaml(text: str, origin: str) -> Any:
    """YAML as DVC reads it (YAML 1.2: ``1e-4`` is a float); EmotionError naming ``origin``."""
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as err:
        raise EmotionError(
            f"{origin}: not valid YAML ({str(err).splitlines()[0]}); fix it and commit it "
            "(`dvc repro` rewrites dvc.lock)"
        ) from None


def lookup(params: Any, dotted: str) -> Any:
    """The value of a DVC dotted params key (``train.lr``, ``scale_range.0``), else MISSING."""
    node = params
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def lock_mismatches(lock: Any, params: Any, origin: str = LOCK) -> list[Mismatch]:
    """Every ``params: params.yaml:`` value recorded in dvc.lock that differs from ``params``."""
    stages = lock.get("stages") if isinstance(lock, Mapping) else None
    if not isinstance(stages, Mapping):
        raise EmotionError(
            f"{origin}: no `stages:` mapping; regenerate it with `dvc repro` and commit it"
        )
    found = []
    for stage, entry in stages.items():
        recorded = (entry.get("params") or {}) if isinstance(entry, Mapping) else {}
        for key, locked in (recorded.get(PARAMS) or {}).items():
            current = lookup(params, key)
            if current is MISSING or current != locked:
                found.append(Mismatch(str(stage), str(key), locked, current))
    return found


@dataclass(frozen=True)
class LockCheck:
    """Whether a commit's dvc.lock agrees with its params.yaml (``stages`` None: no dvc.lock)."""

    rev: Revision
    stages: int | None
    mismatches: list[Mismatch]


def check_lock(rev: Revision, project: Path) -> LockCheck:
    """Compare the dvc.lock and params.yaml committed at ``rev`` (read with ``git show``)."""
    lock_text = _git(project, "show", f"{rev.sha}:./{LOCK}")
    if not lock_text:
        return LockCheck(rev, None, [])
    lock = load_yaml(lock_text, f"{LOCK} at {rev.name}")
    params_text = _git(project, "show", f"{rev.sha}:./{PARAMS}")
    params = load_yaml(params_text, f"{PARAMS} at {rev.name}") if params_text else {}
    mismatches = lock_mismatches(lock, params, f"{LOCK} at {rev.name}")
    return LockCheck(rev, len(lock["stages"]), mismatches)


def uncommitted(project: Path) -> list[str]:
    """Result files (RESULTS) in the workspace that differ from the HEAD commit."""
    changed = _git(project, "diff", "--name-only", "--relative", "HEAD", "--", *RESULTS)
    new = _git(project, "ls-files", "--others", "--exclude-standard", "--", *RESULTS)
    return sorted({*(changed or "").splitlines(), *(new or "").splitlines()})


MAX_LISTED = 10  # mismatching params listed under a warning


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _lock_lines(side: str, check: LockCheck) -> list[str]:
    """The provenance bullet of one side, with its mismatching params as sub-bullets."""
    head = f"- {side} commit {check.rev}: "
    if check.stages is None:
        return [head + f"no {LOCK} committed (no pipeline run recorded)"]
    if not check.mismatches:
        return [head + f"{LOCK} matches {PARAMS} ({_count(check.stages, 'stage')})"]
    n, more = len(check.mismatches), len(check.mismatches) - MAX_LISTED
    return [
        head + f"⚠️ **{LOCK} disagrees with {PARAMS}** ({_count(n, 'param')}): metrics may not "
        f"correspond to {PARAMS}; run `dvc repro` and commit {LOCK}",
        *(f"  - {m}" for m in check.mismatches[:MAX_LISTED]),
        *([f"  - … and {more} more"] if more > 0 else []),
    ]


def provenance_section(head: LockCheck, base: LockCheck, dirty: list[str]) -> str:
    """Which commits the report compares, and whether their dvc.lock matches params.yaml."""
    lines = [
        "### Provenance\n",
        "From the results committed in git (metrics and plots with `cache: false`, params, "
        f"{LOCK}); no pipeline stage was run for this report.\n",
        *_lock_lines("head", head),
        *_lock_lines("base", base),
    ]
    if dirty:
        lines.append(
            f"- ⚠️ uncommitted changes in {', '.join(f'`{p}`' for p in dirty)}: the tables show "
            f"the workspace, not commit {head.rev.sha}; commit them to report the commit"
        )
    return "\n".join(lines) + "\n"


FOLD_ROWS = 15  # longer tables are folded into a <details> block to keep the comment short


def _dvc_section(title: str, md_table: str, empty: str) -> str:
    """A section holding DVC's markdown table, ``empty`` if it has no data rows."""
    table = md_table.strip()
    rows = sum(line.startswith("|") for line in table.splitlines()) - 2  # header + separator
    if rows <= 0:
        body = empty
    elif rows > FOLD_ROWS:
        body = f"<details><summary>{rows} changes</summary>\n\n{table}\n\n</details>"
    else:
        body = table
    return f"### {title}\n\n{body}\n"


#: Metric keys that record wall-clock time: they change on every run, so the report lists them
#: apart (folded) instead of letting them bury the quality metrics.
TIMING_KEYS = ("*seconds*", "*_s", "*_ms", "latency")


def is_timing(metric: str) -> bool:
    """Whether a dotted metric name (``latency.pytorch.batch1_p50_ms``) is a timing."""
    return any(fnmatch.fnmatchcase(part, pat) for part in metric.split(".") for pat in TIMING_KEYS)


def split_timings(md_table: str) -> tuple[str, str]:
    """DVC's metrics table as (quality rows, timing rows), each a table or ``""``."""
    lines = md_table.strip().splitlines()
    if len(lines) < 3:
        return md_table.strip(), ""
    head, rows = lines[:2], lines[2:]
    timing = [r for r in rows if len(r.split("|")) > 2 and is_timing(r.split("|")[2].strip())]
    quality = [r for r in rows if r not in timing]
    return (
        "\n".join(head + quality) if quality else "",
        "\n".join(head + timing) if timing else "",
    )


def metrics_section(
    md_table: str, title: str = "Metrics", empty: str = "No metric changes."
) -> str:
    """Metric changes, with wall-clock timings folded into their own block."""
    quality, timing = split_timings(md_table)
    section = _dvc_section(title, quality, empty)
    if timing:
        n = len(timing.splitlines()) - 2
        section += (
            f"\n<details><summary>{n} wall-clock timing changes (they vary from run to run)"
            f"</summary>\n\n{timing}\n\n</details>\n"
        )
    return section


def read_confusion(text: str, origin: str) -> Confusion:
    """Count (actual, predicted) pairs of a confusion CSV (one row per test image)."""
    rows = csv.DictReader(io.StringIO(text))
    if not {"actual", "predicted"} <= set(rows.fieldnames or ()):
        raise EmotionError(f"{origin}: expected columns 'actual,predicted', got {rows.fieldnames}")
    return Counter((row["actual"], row["predicted"]) for row in rows)


def _confusion_at(base: Revision, project: Path) -> tuple[Confusion | None, Confusion | None]:
    old = _git(project, "show", f"{base.sha}:./{CONFUSION}")
    path = project / CONFUSION
    return (
        read_confusion(old, f"{CONFUSION} at {base.name}") if old is not None else None,
        read_confusion(path.read_text(), str(path)) if path.is_file() else None,
    )


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _support(c: Confusion, cls: str) -> int:
    return sum(n for (actual, _), n in c.items() if actual == cls)


def _rate(c: Confusion, cls: str, predicted: str) -> float | None:
    """Share of ``cls`` test images predicted as ``predicted``; None if there are none."""
    n = _support(c, cls)
    return c[cls, predicted] / n if n else None


def _top_confusion(c: Confusion, cls: str) -> str | None:
    """The class most often predicted for ``cls`` other than itself (ties: alphabetical)."""
    wrong = sorted(
        (-n, predicted) for (actual, predicted), n in c.items() if actual == cls != predicted
    )
    return wrong[0][1] if wrong else None


def confusion_section(old: Confusion | None, new: Confusion | None, base: str) -> str:
    """Per-class test recall before → after, with each class's top confusion now."""
    head = f"### Test confusion (`{CONFUSION}`)\n\n"
    if old is None or new is None:
        missing = " and ".join(
            side for side, c in ((f"base `{base}`", old), ("the workspace", new)) if c is None
        )
        return head + f"Absent at {missing}: no confusion comparison.\n"
    if old == new:
        return head + f"Confusion matrix unchanged ({old.total()} test images).\n"

    lines = [
        "| class | test images | recall | Δ recall | most confused with (now, was) |",
        "|---|---|---|---|---|",
    ]
    for cls in sorted({actual for actual, _ in (*old, *new)}):
        was, now = _rate(old, cls, cls), _rate(new, cls, cls)
        delta = "—" if was is None or now is None else f"{100 * (now - was):+.1f} pp"
        top = _top_confusion(new, cls)
        confused = (
            f"{top} {_pct(_rate(new, cls, top))}, {_pct(_rate(old, cls, top))}" if top else "—"
        )
        lines.append(
            f"| {cls} | {_support(old, cls)} → {_support(new, cls)} | {_pct(was)} → {_pct(now)} "
            f"| {delta} | {confused} |"
        )
    return head + "\n".join(lines) + "\n"


def build_report(base: str, project: Path = Path(), plots_dir: Path | None = None) -> str:
    """The markdown report of the workspace against revision ``base``.

    With ``plots_dir``, also writes ``dvc plots diff`` HTML (every plot in dvc.yaml) there.
    """
    rev = resolve(base, project)
    metrics = _dvc(project, "metrics", "diff", base, "--md")
    reports = sorted(p.relative_to(project).as_posix() for p in (project / REPORTS).glob("*.json"))
    detail = (
        _dvc(project, "metrics", "diff", base, "--md", "--targets", *reports) if reports else ""
    )
    params = _dvc(project, "params", "diff", base, "--md")
    if plots_dir is not None:
        _dvc(project, "plots", "diff", base, "--out", str(Path(plots_dir).resolve()))
    old, new = _confusion_at(rev, project)
    head = _head(project)
    return "\n".join(
        [
            f"## Pipeline report: {rev} → workspace at {head}\n",
            provenance_section(
                check_lock(head, project), check_lock(rev, project), uncommitted(project)
            ),
            metrics_section(metrics),
            *(
                [metrics_section(detail, "Detail (reports/)", "No changes in the reports.")]
                if reports
                else []
            ),
            _dvc_section("Params", params, "No params changes."),
            confusion_section(old, new, base),
        ]
    )
