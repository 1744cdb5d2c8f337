"""Static checks of dvc.yaml: params keys, library deps and cache settings match the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from emotion.tools.params_file import STAGE_SECTIONS, Params, all_leaf_keys, stage_leaf_keys

from .conftest import REPO, emotion_imports

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES: dict[str, Any] = DVC["stages"]


def _entries(items: list[Any]) -> list[str]:
    return [next(iter(i)) if isinstance(i, dict) else i for i in items]


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    base = REPO / "src" / Path(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def imported_library_files(script: Path) -> set[str]:
    """Project-relative files of every ``emotion`` module ``script`` imports, transitively."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in emotion_imports(todo.pop()):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # packages' __init__ run too
                file = _module_file(".".join(parts[:i]))
                if file and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return {f.relative_to(REPO).as_posix() for f in seen}


def _declared_files(stage: dict[str, Any]) -> set[str]:
    files: set[str] = set()
    for dep in stage.get("deps", []):
        path = REPO / dep
        if dep.startswith("src/") and path.is_dir():
            files.update(p.relative_to(REPO).as_posix() for p in path.rglob("*.py"))
        elif dep.startswith("src/"):
            files.add(dep)
    return files


def test_every_code_stage_is_wired() -> None:
    assert set(STAGES) == set(STAGE_SECTIONS)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_exactly_the_params_keys_it_reads(name: str) -> None:
    declared = set(_entries(STAGES[name].get("params", [])))
    assert declared == stage_leaf_keys(name)


def test_every_params_key_is_declared_by_some_stage() -> None:
    declared = {k for s in STAGES.values() for k in _entries(s.get("params", []))}
    assert set(all_leaf_keys()) - declared == set()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_its_script_and_exactly_the_modules_it_imports(name: str) -> None:
    stage = STAGES[name]
    script = f"stages/{name}.py"
    assert script in stage["deps"]
    assert f" {script}" in stage["cmd"]
    assert _declared_files(stage) == imported_library_files(REPO / script)


CHECKPOINT_READERS = {"evaluate", "explain", "export"}


def _schema_file(section: str) -> str:
    schema = Params.model_fields[section].annotation
    return f"src/{schema.__module__.replace('.', '/')}.py"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_imports_the_schemas_of_exactly_its_params_sections(name: str) -> None:
    """Editing a package's schema (``<package>/params.py``) stales only the stages reading it.

    Stages that load the trained checkpoint also read its ``model`` section (to rebuild the
    network), so they import that schema too.
    """
    schemas = {
        f for f in imported_library_files(REPO / f"stages/{name}.py") if f.endswith("/params.py")
    }
    sections = {entry.partition(".")[0] for entry in STAGE_SECTIONS[name]}
    sections |= {"model"} if name in CHECKPOINT_READERS else set()
    assert schemas == {_schema_file(s) for s in sections}


def test_each_package_holds_the_schemas_of_its_own_stages() -> None:
    packages = {s: _schema_file(s).split("/")[2] for s in Params.model_fields}
    assert packages == {
        "demo_data": "demo_data",
        "ingest": "data",
        "split": "data",
        "balance": "data",
        "crop": "vision",
        "synth": "synthesize",
        "model": "training",
        "train": "training",
        "evaluate": "training",
        "regions": "regions",
        "explain": "explain",
        "export": "export",
    }


def test_no_output_is_persistent() -> None:
    """A `persist: true` output switches DVC's run-cache off for its stage."""
    for name, stage in STAGES.items():
        for out in stage.get("outs", []):
            opts = next(iter(out.values())) if isinstance(out, dict) else {}
            assert not opts.get("persist"), f"{name}: {out}"


def _path_opts(entry: Any) -> tuple[str, dict[str, Any]]:
    return next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})


def test_metrics_and_plots_are_declared_as_such_and_kept_in_git() -> None:
    """Metrics and plot files live in git (`cache: false`) for `dvc metrics/plots diff` in PRs,
    declared under a stage's `metrics:` / `plots:`: DVC saves no run-cache entry for a stage
    with any other uncached output."""
    stage_plots = set()
    for name, stage in STAGES.items():
        for out in stage.get("outs", []):
            path, opts = _path_opts(out)
            assert opts.get("cache", True), f"{name}: {path} must be a metric or plot"
            in_git = path.startswith(("metrics/", "reports/", "plots/"))
            assert not in_git or path in ("plots/explain", "plots/train/live/metrics.json"), path
        for kind in ("metrics", "plots"):
            for entry in stage.get(kind, []):
                path, opts = _path_opts(entry)
                assert opts.get("cache") is False, f"{name}: {path} must be cache: false"
                if kind == "plots":
                    stage_plots.add(path)
    for plot in DVC["plots"]:
        _, spec = _path_opts(plot)
        assert set(spec["y"]) <= stage_plots


def test_each_stage_with_results_declares_a_report_plot_and_maybe_a_headline() -> None:
    """reports/<name>.json is declared as a plot (its rows are the chart); a stage with headline
    figures also declares metrics/<name>.json (the columns of `dvc exp show`); both paths are
    passed on the command line."""
    reported, headlined = 0, 0
    for name, stage in STAGES.items():
        metrics = [_path_opts(e)[0] for e in stage.get("metrics", [])]
        reports = [_path_opts(e)[0] for e in stage.get("plots", [])]
        reports = [p for p in reports if p.startswith("reports/")]
        if not metrics and not reports:
            continue
        (report,) = reports
        reported += 1
        assert f"--report {report}" in stage["cmd"]
        (spec,) = [_path_opts(e)[1] for e in stage["plots"] if _path_opts(e)[0] == report]
        assert {"x", "y", "title"} <= set(spec), name
        if metrics:
            headlined += 1
            assert metrics == [report.replace("reports/", "metrics/", 1)], name
            assert f"--metrics {metrics[0]}" in stage["cmd"]
    assert (reported, headlined) == (8, 6)
