"""Where a run came from: commit, params overlay, dataset digest and ``dvc.lock`` hashes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from emotion.core.config import PARAMS_FILE, parse_yaml, read_yaml
from emotion.core.errors import EmotionError

LOCK_FILE = "dvc.lock"
#: the stages whose outputs make the exported model, in pipeline order
MODEL_STAGES = ("ingest", "balance", "synthesize", "train", "evaluate", "export")


def _git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
    if done.returncode != 0:
        raise EmotionError(f"`git {' '.join(args)}` in {project} failed: {done.stderr.strip()}")
    return done.stdout


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out |= _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def params_overlay(project: Path) -> dict[str, Any]:
    """The dotted keys whose values in ``params.yaml`` differ from the committed defaults."""
    committed = _leaves(parse_yaml(_git(project, "show", f"HEAD:{PARAMS_FILE}"), "HEAD"))
    current = _leaves(read_yaml(project / PARAMS_FILE))
    return {key: value for key, value in current.items() if committed.get(key) != value}


def lock_outputs(project: Path) -> list[list[dict[str, Any]]]:
    """Every stage's ``outs`` entries in ``dvc.lock``."""
    lock = read_yaml(project / LOCK_FILE).get("stages", {})
    return [entry.get("outs", []) for entry in lock.values()]


def lock_hashes(project: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Per model stage: the hashes ``dvc.lock`` records for its dependencies and outputs."""
    lock = read_yaml(project / LOCK_FILE).get("stages", {})
    missing = [stage for stage in MODEL_STAGES if stage not in lock]
    if missing:
        raise EmotionError(f"{project / LOCK_FILE}: no entry for {missing}; run `dvc repro export`")

    def hashes(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {e["path"]: {k: e[k] for k in ("md5", "size", "nfiles") if k in e} for e in entries}

    return {
        stage: {"deps": hashes(lock[stage].get("deps", [])), "outs": hashes(lock[stage]["outs"])}
        for stage in MODEL_STAGES
    }


def provenance(project: Path) -> dict[str, Any]:
    """Commit (and the files changed since it other than stage outputs), the params overlay,
    the dataset and the lock hashes."""
    params = read_yaml(project / PARAMS_FILE)
    source = params["ingest"]["source"]
    locks = lock_hashes(project)
    dataset = locks["ingest"]["deps"].get(source)
    if dataset is None:
        raise EmotionError(f"{LOCK_FILE}: ingest does not record {source}; run `dvc repro export`")
    status = _git(project, "status", "--porcelain").splitlines()
    outputs = {LOCK_FILE, *(o["path"] for stage in lock_outputs(project) for o in stage)}
    changed = sorted(
        path
        for path in (line[3:] for line in status if not line.startswith("??"))
        if not any(path == out or path.startswith(f"{out}/") for out in outputs)
    )
    first = (project / PARAMS_FILE).read_text(encoding="utf-8").split("\n", 1)[0]
    return {
        "commit": _git(project, "rev-parse", "HEAD").strip(),
        "changed_since_commit": changed,  # stage outputs and dvc.lock aside
        "profile": first.split(" ")[2] if first.startswith("# profile: ") else None,
        "params_overlay": params_overlay(project),
        "dataset": {"path": source, **dataset},
        "dvc_lock": locks,
    }


def overlay_yaml(overlay: dict[str, Any], profile: str | None) -> str:
    """The overlay as a profile file: ``emotion profile use`` can apply it to the defaults."""
    head = f"# The params of this release's run over the defaults (profile: {profile}).\n"
    return head + yaml.safe_dump({"set": overlay}, sort_keys=True, width=100)
