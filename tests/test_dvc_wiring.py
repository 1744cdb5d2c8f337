"""Static checks of dvc.yaml: params keys, library deps and cache settings match the code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from emotion.config import STAGE_SECTIONS, leaf_keys, stage_leaf_keys

REPO = Path(__file__).resolve().parents[1]
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
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name != "emotion" and not name.startswith("emotion."):
                    continue
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
    assert set(leaf_keys()) - declared == set()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_its_script_and_exactly_the_modules_it_imports(name: str) -> None:
    stage = STAGES[name]
    script = f"stages/{name}.py"
    assert script in stage["deps"]
    assert f" {script}" in stage["cmd"]
    assert _declared_files(stage) == imported_library_files(REPO / script)


def test_metrics_and_plot_data_are_kept_in_git() -> None:
    """Metrics and plot data (CSV/JSON) live in git for `dvc metrics/plots diff` in PRs.

    Folders of explanation images may stay in the DVC cache (they are large and binary).
    """
    for stage in STAGES.values():
        for out in stage.get("outs", []):
            path, opts = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            plot_data = path.startswith("plots/") and path.endswith((".csv", ".json", ".tsv"))
            if path.startswith("metrics/") or plot_data:
                assert opts.get("cache") is False, f"{path} must be cache: false"
    listed_plots = set()
    for plot in DVC["plots"]:
        name, spec = next(iter(plot.items())) if isinstance(plot, dict) else (plot, {})
        listed_plots.update(spec["y"] if isinstance(spec.get("y"), dict) else [name])
    outs = {o for s in STAGES.values() for o in _entries(s.get("outs", []))}
    assert set(DVC["metrics"]) <= outs
    assert listed_plots <= outs
