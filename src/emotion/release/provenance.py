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


def params_overlay(project: Path, current: dict[str, Any]) -> dict[str, Any]:
    """The dotted keys whose values in ``current`` (the workspace's params) differ from the
    committed defaults."""
    committed = _leaves(parse_yaml(_git(project, "show", f"HEAD:{PARAMS_FILE}"), "HEAD"))
    return {k: v for k, v in _leaves(current).items() if committed.get(k) != v}


def lock_hashes(lock: dict[str, Any], origin: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Per model stage: the hashes ``dvc.lock``'s ``stages`` record for its deps and outputs."""
    missing = [stage for stage in MODEL_STAGES if stage not in lock]
    if missing:
        raise EmotionError(f"{origin}: no entry for {missing}; run `dvc repro export`")

    def hashes(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {e["path"]: {k: e[k] for k in ("md5", "size", "nfiles") if k in e} for e in entries}

    return {
        stage: {"deps": hashes(lock[stage].get("deps", [])), "outs": hashes(lock[stage]["outs"])}
        for stage in MODEL_STAGES
    }


def changed_since_commit(project: Path, lock: dict[str, Any]) -> list[str]:
    """Tracked files changed since the commit, other than ``dvc.lock`` and stage outputs."""
    outputs = {LOCK_FILE, *(o["path"] for entry in lock.values() for o in entry.get("outs", []))}
    status = _git(project, "status", "--porcelain").splitlines()
    return sorted(
        path
        for path in (line[3:] for line in status if not line.startswith("??"))
        if not any(path == out or path.startswith(f"{out}/") for out in outputs)
    )


def provenance(project: Path) -> dict[str, Any]:
    """Commit (and the files changed since it other than stage outputs), the params overlay,
    the dataset and the lock hashes; ``params.yaml`` and ``dvc.lock`` are each read once."""
    text = (project / PARAMS_FILE).read_text(encoding="utf-8")
    params = parse_yaml(text, str(project / PARAMS_FILE))
    lock = read_yaml(project / LOCK_FILE).get("stages", {})
    source = params["ingest"]["source"]
    locks = lock_hashes(lock, project / LOCK_FILE)
    dataset = locks["ingest"]["deps"].get(source)
    if dataset is None:
        raise EmotionError(f"{LOCK_FILE}: ingest does not record {source}; run `dvc repro export`")
    first = text.split("\n", 1)[0]
    return {
        "commit": _git(project, "rev-parse", "HEAD").strip(),
        "changed_since_commit": changed_since_commit(project, lock),
        "profile": first.split(" ")[2] if first.startswith("# profile: ") else None,
        "params_overlay": params_overlay(project, params),
        "dataset": {"path": source, **dataset},
        "dvc_lock": locks,
    }


def overlay_yaml(overlay: dict[str, Any], profile: str | None) -> str:
    """The overlay as a profile file: ``emotion profile use`` can apply it to the defaults."""
    head = f"# The params of this release's run over the defaults (profile: {profile}).\n"
    return head + yaml.safe_dump({"set": overlay}, sort_keys=True, width=100)
