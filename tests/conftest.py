"""Shared fixtures and helpers: repo paths, image trees, the venv's tools, temp DVC projects."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from emotion.core.config import PARAMS_FILE
from emotion.tools import plots_page, profiles
from emotion.tools.params_file import load_section

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv running the tests (has dvc, python, emotion)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The tests derive every config from the defaults: refuse to run on a profiled params.yaml."""
    applied = profiles.applied_profile((REPO / PARAMS_FILE).read_text(encoding="utf-8"))
    if applied:
        pytest.exit(
            f"params.yaml has profile '{applied}' applied; the tests start from the defaults:"
            " `git stash` or `git restore params.yaml` first",
            returncode=2,
        )


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:`` (never executed)."""
    for child in ast.iter_child_nodes(node):
        test = child.test if isinstance(child, ast.If) else None
        if test is not None and "TYPE_CHECKING" in ast.unparse(test):
            yield from (n for c in child.orelse for n in (c, *_runtime_nodes(c)))
            continue
        yield child
        yield from _runtime_nodes(child)


def emotion_imports(path: Path) -> set[str]:
    """Dotted names a Python file imports from ``emotion`` (``from m import x`` gives ``m`` and
    ``m.x``: ``x`` may be a submodule), anywhere in the file, lazy imports included; imports for
    type checkers only (``if TYPE_CHECKING:``) are not run, so they are not counted."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name == "emotion" or name.startswith("emotion.")}


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: the venv's tools first on PATH, no DVC analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["EMOTION_WORKERS"] = env.get("EMOTION_WORKERS", "1")
    env.update(extra)
    return env


TINY = [
    "demo_data.count=120",
    "ingest.samples_per_class=3",
    "train.epochs=2",
    "train.batch_size=16",
    "model.head_hidden=32",
    "synth.target_total=160",
    "synth.image_size=32",
    "synth.steps=2",
    "export.latency_runs=10",
    "export.calibration_images=32",
    "explain.per_class=2",
    "explain.lime_samples=60",
    "explain.shap_nsamples=10",
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


def params_text(overrides: Mapping[str, Any], base: Path = REPO / PARAMS_FILE) -> str:
    """The committed ``params.yaml`` with dotted ``overrides`` applied (validated)."""
    return profiles.apply(base.read_text(encoding="utf-8"), [(overrides, "test")], "test params")


def set_params(project: Path, overrides: Mapping[str, Any]) -> None:
    """Set dotted keys in ``project``'s params.yaml (as a user editing it would)."""
    path = project / PARAMS_FILE
    path.write_text(params_text(overrides, path))


def section(name: str, /, **overrides: Any) -> Any:
    """The committed params section ``name`` with ``overrides``, validated like params.yaml."""
    return load_section(name, REPO / PARAMS_FILE, **overrides)


def copy_repo(dest: Path, profile: str | None = None, overrides: Sequence[str] = TINY) -> Path:
    """The repo's files (tracked + untracked, not ignored) at ``dest``, as a new git repo,
    with ``params.yaml`` = the defaults, or ``profile`` applied, plus ``overrides``, and the
    `dvc plots` page template that ``make setup`` writes (git-ignored)."""
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
    plots_page.write_template(dest / plots_page.DEFAULT_TEMPLATE, REPO / plots_page.CLIENT_DIR)
    if profile is None:
        (dest / PARAMS_FILE).write_text(params_text(profiles.parse_overrides(list(overrides))))
    else:
        sets = [a for kv in overrides for a in ("--set", kv)]
        run(["emotion", "profile", "use", profile, *sets], dest)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "config", "user.email", "e2e@example.com"], dest)
    run(["git", "config", "user.name", "e2e"], dest)
    return dest


def commit(project: Path, message: str) -> None:
    """Commit everything in ``project`` (nothing when nothing changed)."""
    run(["git", "add", "-A"], project)
    if run(["git", "status", "--porcelain"], project).stdout.strip():
        run(["git", "commit", "-q", "-m", message], project)


def ran_project(dest: Path) -> Path:
    """A committed copy of the repo at ``dest`` after one tiny `dvc repro`, with a local DVC
    remote beside it."""
    copy_repo(dest)
    run(["dvc", "remote", "modify", "storage", "url", str(dest.parent / "remote")], dest)
    run(["dvc", "repro"], dest)
    commit(dest, "tiny demo run")
    return dest


def image_bytes(seed: int, fmt: str = "PNG", size: int = 16) -> bytes:
    """A small random grayscale image encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[dict[str, int]], Path]:
    """Build ``{relative_folder: n_images}`` as a folder tree of distinct small images."""

    def build(spec: dict[str, int], root: Path | None = None) -> Path:
        root = root or tmp_path / "raw"
        seed = 0
        for folder, n in spec.items():
            for i in range(n):
                seed += 1
                fmt = "JPEG" if i % 3 == 2 else "PNG"
                ext = "jpg" if fmt == "JPEG" else "png"
                path = root / folder / f"img{i:03d}.{ext}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(image_bytes(seed * 7919 + len(folder), fmt))
        return root

    return build


def md5(path: Path) -> str:
    """A file's MD5, the digest DVC names its cached files by."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def log_of(done: subprocess.CompletedProcess[str]) -> str:
    """Everything a command printed (DVC logs stage runs on stderr)."""
    return done.stdout + done.stderr


@contextmanager
def params_set(project: Path, **changes: Any) -> Iterator[None]:
    """``params.yaml`` with dotted ``section__key=value`` changes, restored afterwards."""
    path = project / "params.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(original)


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on loopback (held open together while they are chosen)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


TRAINED = "emotion.train INFO epoch "  # the trainer logs one such line per epoch it runs
CACHED = "Stage '{}' is cached - skipping run, checking out outputs"


def teammate_restores_without_training(clone: Path, head_lr: float, model_md5: str) -> None:
    """In a teammate's clone, `dvc pull --run-cache` then `dvc repro --pull` of a configuration
    that ran elsewhere (``train.head_lr``) restores train..export without training."""
    run(["dvc", "pull", "--run-cache"], clone)
    with params_set(clone, train__head_lr=head_lr):
        out = log_of(run(["dvc", "repro", "--pull"], clone))
    for stage in ("train", "evaluate", "explain", "export"):
        assert CACHED.format(stage) in out
    assert TRAINED not in out
    assert md5(clone / "models/best_model.pth") == model_md5
