"""Sharing DVC's run-cache so a teammate's ``dvc repro --pull`` restores stages run elsewhere.

``dvc push --run-cache`` uploads the run-cache entries and the workspace's cached outputs, but
not the other files those entries record: the outputs of runs that are not in the workspace, and
the metrics and plots of every run (``cache: false`` outputs are never pushed, although DVC
keeps them in the local cache for the run-cache). A teammate's restore then finds a matching
entry whose files are missing and reruns the stage. :func:`push_run_cache` pushes those too.
"""

from __future__ import annotations

from pathlib import Path

from emotion.core.errors import EmotionError


def push_run_cache(remote: str | None = None, project: Path = Path()) -> tuple[int, int]:
    """``dvc push --run-cache``, then every object a run-cache entry names.

    Returns ``(entries, objects pushed)``; raises if any object could not be pushed.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(project)) as repo:
            repo.push(run_cache=True, remote=remote)
            root = Path(repo.stage_cache.cache_dir)
            entries = [(p.parent.name, p.name) for p in sorted(root.glob("*/*/*"))]
            pushed, failed = 0, 0
            for odb, objs in repo.stage_cache.get_used_objs(entries).items():
                result = repo.cloud.push(objs, remote=remote, odb=odb)
                pushed, failed = pushed + len(result.transferred), failed + len(result.failed)
    except DvcException as exc:
        raise EmotionError(f"push of the run-cache failed: {exc}") from None
    if failed:
        raise EmotionError(
            f"{failed} run-cache file(s) could not be pushed (missing from the local cache?);"
            " `dvc repro` the stages again, then retry"
        )
    return len(entries), pushed
