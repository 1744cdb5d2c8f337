"""A team's DVC remote on object storage: SeaweedFS's S3 gateway on loopback, the `dvc` CLI.

Push, then a teammate's fresh clone pulls datasets and models; the run-cache hand-off restores
a configuration the teammate never ran; an experiment travels through a bare git remote with
`dvc exp push` / `dvc exp pull`; and `dvc gc` with the flags docs/dvc.md recommends removes an
orphaned run's files while every commit's and experiment's files stay pullable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import (
    TRAINED,
    commit,
    copy_repo,
    image_bytes,
    log_of,
    md5,
    params_set,
    run,
    stale_stages,
    teammate_restores_without_training,
    tool_env,
)
from .object_store import ACCESS_KEY, SECRET_KEY, ObjectStore, seaweedfs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REMOTE = "team"
PREFIX = "emotion-pipeline"
MODEL = "models/best_model.pth"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as running:
        yield running


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, store: ObjectStore) -> Path:
    """A tiny run with the object store as its default remote since the first commit (keys in
    .dvc/config.local: `dvc gc --all-commits` reads every commit's config with them)."""
    dest = copy_repo(tmp_path_factory.mktemp("store") / "project")
    store.add_remote(dest, REMOTE, PREFIX, tool_env())
    run(["dvc", "repro"], dest)
    commit(dest, "tiny demo run, with the team's remote")
    assert "access_key_id" not in (dest / ".dvc/config").read_text()  # credentials stay local
    return dest


def clone_of(project: Path, dest: Path, store: ObjectStore) -> Path:
    """A teammate's clone: git clone, then their own keys for the remote (never in git)."""
    run(["git", "clone", "-q", str(project), str(dest)], dest.parent)
    for key, value in (("access_key_id", ACCESS_KEY), ("secret_access_key", SECRET_KEY)):
        run(["dvc", "remote", "modify", "--local", REMOTE, key, value], dest)
    return dest


def test_a_teammate_pulls_datasets_and_models_from_the_object_store(
    project: Path, store: ObjectStore, tmp_path: Path
) -> None:
    faces = tmp_path / "download" / "faces"
    for i, label in enumerate(["happy", "sad", "angry"] * 4):
        (faces / label).mkdir(parents=True, exist_ok=True)
        (faces / label / f"{i}.png").write_bytes(image_bytes(900 + i))
    run(["emotion", "dataset", "add", str(faces), "--name", "faces"], project)
    commit(project, "a dataset under DVC")
    run(["dvc", "push"], project)
    assert any(k.startswith("files/md5/") for k in store.keys(PREFIX))

    clone = clone_of(project, tmp_path / "teammate", store)
    assert not (clone / MODEL).exists()
    run(["dvc", "pull"], clone)
    assert stale_stages(clone) == set()
    assert md5(clone / MODEL) == md5(project / MODEL)
    pulled = sorted(p.name for p in (clone / "data/external/faces").rglob("*.png"))
    assert pulled == sorted(p.name for p in faces.rglob("*.png"))
    assert run(["dvc", "status", "--cloud", "--json"], clone).stdout.strip() in ("", "{}")


def test_the_run_cache_reaches_a_teammate_through_the_object_store(
    project: Path, store: ObjectStore, tmp_path: Path
) -> None:
    """Run B, go back to A; `emotion push-run-cache`; the teammate's `dvc repro --pull` of B
    restores every stage from the store without training."""
    with params_set(project, train__head_lr=0.0029):
        run(["dvc", "repro"], project)
        best_b = md5(project / MODEL)
    assert TRAINED not in log_of(run(["dvc", "repro"], project))  # A: from the run-cache
    run(["emotion", "push-run-cache"], project)
    assert any(k.startswith("runs/") for k in store.keys(PREFIX))

    clone = clone_of(project, tmp_path / "teammate", store)
    teammate_restores_without_training(clone, 0.0029, best_b)


def test_an_experiment_travels_through_git_and_the_object_store(
    project: Path, store: ObjectStore, tmp_path: Path
) -> None:
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], project)
    run(["git", "push", "-q", "origin", "main"], project)
    run(["dvc", "exp", "run", "-n", "lr41", "-S", "train.head_lr=0.0041"], project)
    trained = md5(project / MODEL)
    run(["dvc", "exp", "push", "origin", "lr41"], project)
    run(["git", "checkout", "--", "."], project)
    run(["dvc", "checkout"], project)

    clone = clone_of(origin, tmp_path / "teammate", store)
    run(["dvc", "exp", "pull", "origin", "lr41"], clone)
    assert "lr41" in run(["dvc", "exp", "list", "--name-only"], clone).stdout.split()
    run(["dvc", "exp", "apply", "lr41"], clone)
    assert md5(clone / MODEL) == trained
    assert yaml.safe_load((clone / "params.yaml").read_text())["train"]["head_lr"] == 0.0041
    assert stale_stages(clone) == set()


def test_gc_with_the_documented_flags_keeps_every_commit_and_experiment(
    project: Path, store: ObjectStore, tmp_path: Path
) -> None:
    """`dvc gc --all-commits --all-experiments --cloud` (docs/dvc.md) deletes the files of a run
    that no commit or experiment holds, locally and in the store, and nothing else."""
    with params_set(project, train__head_lr=0.0017):
        run(["dvc", "repro"], project)
        orphan = md5(project / MODEL)
        run(["dvc", "push"], project)
    run(["dvc", "repro"], project)
    run(["dvc", "push"], project)  # the committed run's files are in the store too
    orphan_key = f"files/md5/{orphan[:2]}/{orphan[2:]}"
    assert orphan_key in store.keys(PREFIX)
    run(["dvc", "exp", "run", "-n", "kept", "-S", "train.head_lr=0.0023"], project)
    kept = md5(project / MODEL)
    run(["dvc", "push"], project)
    run(["git", "checkout", "--", "."], project)
    run(["dvc", "checkout"], project)

    run(["dvc", "gc", "--all-commits", "--all-experiments", "--cloud", "--force"], project)
    kept_key = f"files/md5/{kept[:2]}/{kept[2:]}"
    assert orphan_key not in store.keys(PREFIX)
    assert kept_key in store.keys(PREFIX)
    assert not (project / ".dvc/cache" / orphan_key).exists()
    clone = clone_of(project, tmp_path / "teammate", store)
    run(["dvc", "pull"], clone)
    assert stale_stages(clone) == set()
    assert md5(clone / MODEL) == md5(project / MODEL)
    run(["dvc", "exp", "apply", "kept"], project)  # the experiment's files are still there
    assert md5(project / MODEL) == kept
    assert stale_stages(project) == set()
