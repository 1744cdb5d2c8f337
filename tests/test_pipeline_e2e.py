"""End to end: `dvc repro` of a tiny config in a temp copy of the repo.

One pipeline run is shared by the module: status/no-op checks, params selectivity for every
key, push -> fresh clone -> pull, a real (non-demo) source, and a failing stage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from emotion.config import STAGE_SECTIONS, leaf_keys

from .conftest import REPO, image_bytes, tool_env

pytestmark = pytest.mark.e2e
TINY = [
    "demo_data.count=120",
    "ingest.samples_per_class=3",
    "train.epochs=2",
    "train.batch_size=16",
    "model.head_hidden=32",
]


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def stale_stages(cwd: Path) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], cwd).stdout or "{}")
    return {name.split(":")[-1] for name in status}


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of the repo (tracked + untracked, not ignored) after one tiny repro."""
    dest = tmp_path_factory.mktemp("e2e") / "project"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    remote = dest.parent / "remote"
    run(["emotion", "profile", "use", "demo", *[a for kv in TINY for a in ("--set", kv)]], dest)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "config", "user.email", "e2e@example.com"], dest)
    run(["git", "config", "user.name", "e2e"], dest)
    run(["dvc", "remote", "modify", "storage", "url", str(remote)], dest)
    run(["dvc", "repro"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "tiny demo run"], dest)
    return dest


def test_repro_writes_outputs_and_leaves_nothing_stale(project: Path) -> None:
    eda = json.loads((project / "metrics/eda.json").read_text())
    assert eda["total"] == 120
    assert eda["with_mask"] == 120
    assert sum(c["count"] for c in eda["classes"].values()) == 120
    assert (project / "plots/eda/samples.png").stat().st_size > 1000
    assert (project / "data/interim/ingest/manifest.csv").is_file()
    evaluation = json.loads((project / "metrics/eval.json").read_text())
    assert (
        evaluation["n"]
        == len((project / "data/evaluate/predictions.csv").read_text().splitlines()) - 1
    )
    assert (project / "models/best_model.pth").is_file()
    assert stale_stages(project) == set()


def test_second_repro_is_a_no_op(project: Path) -> None:
    lock = (project / "dvc.lock").read_bytes()
    before = tree_digest(project / "data")
    out = run(["dvc", "repro"], project).stdout
    for stage in STAGE_SECTIONS:
        assert f"Stage '{stage}' didn't change, skipping" in out
    assert (project / "dvc.lock").read_bytes() == lock
    assert tree_digest(project / "data") == before


def _mutate(value: Any) -> Any:
    if value is None:
        return 64
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 1.1 + 0.01, 6)
    if isinstance(value, str):
        return {"fail": "skip", "skip": "fail"}.get(value, value + "_changed")
    if isinstance(value, list):
        return [*value, value[-1]]
    if isinstance(value, dict):
        return {**value, "extra_key": next(iter(value.values()))}
    raise TypeError(value)


@pytest.mark.parametrize("key", sorted(leaf_keys()))
def test_editing_one_key_stales_exactly_the_stages_that_read_it(project: Path, key: str) -> None:
    path = project / "params.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    section, name = key.split(".", 1)
    data[section][name] = _mutate(data[section][name])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        expected = {stage for stage, sections in STAGE_SECTIONS.items() if section in sections}
        assert expected, f"{key} is read by no stage"
        assert stale_stages(project) == expected
    finally:
        path.write_text(original)
    assert stale_stages(project) == set()


def test_push_then_fresh_clone_and_pull_restores_the_workspace(
    project: Path, tmp_path: Path
) -> None:
    run(["dvc", "push"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data/raw/demo").exists()
    run(["dvc", "pull"], clone)
    for folder in ("data", "models"):
        assert tree_digest(clone / folder) == tree_digest(project / folder)
    assert stale_stages(clone) == set()


def test_failing_stage_names_the_file_and_keeps_previous_outputs(
    project: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad" / "happy"
    bad.mkdir(parents=True)
    (bad / "ok.png").write_bytes(image_bytes(1))
    (bad / "broken.png").write_text("not an image")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ingest"]["source"] = str(bad.parent)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    manifest = (project / "data/interim/ingest/manifest.csv").read_bytes()
    done = run(
        [
            "python",
            "stages/ingest.py",
            "--out",
            "data/interim/ingest",
            "--metrics",
            "metrics/eda.json",
            "--plots",
            "plots/eda",
            "--params",
            str(tmp_path / "params.yaml"),
        ],
        project,
        check=False,
    )
    assert done.returncode == 2
    assert "broken.png: not a recognised image format" in done.stderr
    assert "Traceback" not in done.stderr
    assert (project / "data/interim/ingest/manifest.csv").read_bytes() == manifest
    assert not list((project / "data/interim").glob(".ingest*"))  # no temp leftovers
    run(["dvc", "checkout"], project)  # the stage script touched nothing DVC tracks
    assert stale_stages(project) == set()


def test_with_a_real_source_demo_data_changes_do_not_rerun_ingest(
    project: Path, tmp_path: Path
) -> None:
    external = tmp_path / "external"
    for i, label in enumerate(["happy", "sad", "Fear", "surprise", "neutral", "angry"] * 10):
        (external / "train" / label).mkdir(parents=True, exist_ok=True)
        (external / "train" / label / f"{i}.png").write_bytes(image_bytes(100 + i))
    run(
        [
            "emotion",
            "profile",
            "use",
            "demo",
            "--set",
            f"ingest.source={external}",
            *[a for kv in TINY for a in ("--set", kv)],
        ],
        project,
    )
    run(["dvc", "repro"], project)
    assert json.loads((project / "metrics/eda.json").read_text())["splits"] == {"train": 60}

    run(
        [
            "emotion",
            "profile",
            "use",
            "demo",
            "--set",
            f"ingest.source={external}",
            "--set",
            "demo_data.seed=7",
            *[a for kv in TINY for a in ("--set", kv)],
        ],
        project,
    )
    assert stale_stages(project) == {"demo_data"}
    out = run(["dvc", "repro"], project).stdout
    assert "Running stage 'demo_data'" in out
    assert "Stage 'ingest' didn't change, skipping" in out
