"""The code host's workflows: linted by actionlint and validated against SchemaStore's schema,
and CI runs the README's commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def lint(folder: Path) -> subprocess.CompletedProcess:
    """actionlint on every workflow of the git repository at ``folder``."""
    return subprocess.run(
        [BIN / "actionlint", "-no-color"], cwd=folder, capture_output=True, text=True
    )


def test_every_workflow_passes_actionlint() -> None:
    done = lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_matches_the_schema(workflow: Path) -> None:
    cmd = [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_fails_a_broken_workflow(tmp_path: Path) -> None:
    """The check can fail: an undefined job output and an expression typo are reported."""
    (tmp_path / ".github/workflows").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    shutil.copy(REPO / ".github/workflows/ci.yml", tmp_path / ".github/workflows/ci.yml")
    assert lint(tmp_path).returncode == 0
    text = (tmp_path / ".github/workflows/ci.yml").read_text()
    broken = text.replace("needs: lint", "needs: lnit").replace(
        "${{ github.ref }}", "${{ github.reff }}"
    )
    (tmp_path / ".github/workflows/ci.yml").write_text(broken)
    done = lint(tmp_path)
    assert done.returncode == 1
    assert "lnit" in done.stdout
    assert "reff" in done.stdout


def test_ci_runs_the_readme_commands_on_push_and_pull_request() -> None:
    ci = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    assert {"push", "pull_request"} <= set(ci[True])  # YAML 1.1 reads the key `on` as True
    runs = "\n".join(step.get("run", "") for job in ci["jobs"].values() for step in job["steps"])
    for command in ("make lint", "make repro", "make test", "make test-slow"):
        assert command in runs
    readme = (REPO / "README.md").read_text()
    assert "make repro" in readme
    assert "make test" in readme
    caches = [
        s["with"].get("cache") for j in ci["jobs"].values() for s in j["steps"] if "with" in s
    ]
    assert "pip" in caches
    assert "npm" in caches
