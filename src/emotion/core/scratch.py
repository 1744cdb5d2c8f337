"""Crash-recovery state that DVC does not track, keyed on what DVC considers a stage's identity.

A stage's declared outputs are exactly what DVC restores from its cache and run-cache, so resume
state must not be one of them: a ``persist: true`` output switches the run-cache off for the
stage. Resume state therefore lives in a git- and DVC-ignored scratch folder:

- ``EMOTION_SCRATCH`` if set (share it across clones, or put it on a big disk), otherwise
- ``.scratch/`` in the DVC project that runs the stage (``DVC_ROOT``: for ``dvc exp run --temp``
  and queued experiments that is the workspace they were started from, so a killed experiment
  resumes when it is run again).

:func:`stage_key` is DVC's own run-cache key for the stage (its command, every dependency's hash
and its params values), computed by DVC from ``dvc.yaml`` in the project: any change DVC sees
gives a different key, hence a fresh run.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotion.core.errors import EmotionError
from emotion.core.hashing import settings_key

log = logging.getLogger("emotion.core.scratch")

SCRATCH_ENV = "EMOTION_SCRATCH"
SCRATCH_DIR = ".scratch"


def scratch_root() -> Path:
    """The scratch folder (not created)."""
    if os.environ.get(SCRATCH_ENV):
        return Path(os.environ[SCRATCH_ENV])
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()) / SCRATCH_DIR


@contextmanager
def _dvc_stage(name: str, project: Path | None) -> Iterator[Any]:
    """Stage ``name`` of the DVC project at ``project`` (default: the cwd), deps hashed."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(project or Path.cwd())) as repo:
            (stage,) = repo.stage.collect(name)
            stage.save_deps()
            yield stage
    except DvcException as exc:
        raise EmotionError(f"dvc.yaml: cannot load stage '{name}': {exc}") from None


def stage_key(name: str, project: Path | None = None) -> str:
    """DVC's run-cache key of stage ``name``: its command, dependency hashes and params values.

    DVC runs a stage's command from the project root with the repository unlocked, so the stage
    can ask DVC for its own definition. Dependency hashes come from DVC's state database (the
    parent ``dvc repro`` has just computed them), so this costs about a second.
    """
    from dvc.stage.cache import _can_hash, _get_stage_hash

    with _dvc_stage(name, project) as stage:
        if not _can_hash(stage):
            raise EmotionError(
                f"dvc.yaml: stage '{name}' cannot be keyed for resume (a dependency is missing"
                " or an output is persistent); run `dvc status` to see which"
            )
        return _get_stage_hash(stage)


def code_key(name: str, project: Path | None = None) -> str:
    """A digest of the Python files stage ``name`` depends on (DVC's hashes of them)."""
    with _dvc_stage(name, project) as stage:
        code = sorted(
            (d.def_path, d.hash_info.value) for d in stage.deps if d.def_path.endswith(".py")
        )
    return settings_key(code)


def run_dir(kind: str, key: str) -> Path:
    """Scratch folder for one run of ``kind`` (a stage name) identified by ``key``."""
    return scratch_root() / kind / key


def resume_dir(kind: str) -> tuple[Path, str]:
    """``(folder, key)`` for this run's resume state.

    Under ``dvc repro`` / ``dvc exp run`` the key is :func:`stage_key`, so a rerun of the same
    stage identity resumes. A stage script run by hand gets a new private folder: nothing proves
    that an earlier state belongs to the same inputs, so it never resumes.
    """
    if os.environ.get("DVC_STAGE"):
        key = stage_key(os.environ["DVC_STAGE"])
        return run_dir(kind, key), key
    parent = scratch_root() / kind
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="standalone-", dir=parent))
    return path, path.name


def shared_dir(kind: str, settings: Mapping[str, Any]) -> Path:
    """Scratch folder shared by every run of ``kind`` with these ``settings`` and stage code.

    For caches whose entries depend on only part of a stage's identity (generated images do not
    depend on quality-control thresholds). A stage script run by hand gets a private folder.
    """
    if not os.environ.get("DVC_STAGE"):
        return resume_dir(kind)[0]
    key = settings_key({"settings": settings, "code": code_key(os.environ["DVC_STAGE"])})
    return run_dir(kind, key)


def clear(path: Path) -> None:
    """Remove a finished run's scratch folder (a finished run is never resumed)."""
    if path.exists():
        shutil.rmtree(path)
        log.info("removed resume state %s (run finished)", path)
