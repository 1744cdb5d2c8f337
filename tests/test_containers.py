"""The serving and pipeline images, built and run with podman as a user would (docker reads the
same files).

Where no image registry is reachable, the build's ``BASE_IMAGE`` is a Debian bookworm base made
here with ``debootstrap`` (``EMOTION_BASE_IMAGE`` names another, e.g. the official image). Where
this machine's pip reads a local package mirror (file:// indexes, find-links folders), the
pipeline build reads the same mirror, mounted read-only, as a user's build would with
``-v /mirror:/mirror:ro --build-arg PIP_EXTRA_INDEX_URL=...``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import pytest

from emotion.serve.client import VENDOR_FILES

from .conftest import REPO, commit, copy_repo, run
from .serve_fixtures import ASTRONAUT_FACE, astronaut, free_port

LOCAL_BASE = "localhost/emotion-bookworm-base"
SERVE_IMAGE = "localhost/emotion-serve:test"
PIPELINE_IMAGE = "localhost/emotion-pipeline:test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CLASSES = ["angry", "fearful", "happy", "neutral", "sad", "surprised"]


class Podman:
    """podman with runc and no default ulimits (what runs inside an unprivileged container)."""

    def __init__(self, conf: Path) -> None:
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(
        self,
        *args: str,
        check: bool = True,
        cwd: Path | None = None,
        stdin: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["podman", "--runtime", "runc", *args]
        done = subprocess.run(
            cmd, cwd=cwd, env=self.env, stdin=stdin, capture_output=True, text=True, timeout=1800
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done


def test_the_build_context_holds_exactly_the_client_files_the_server_sends() -> None:
    """.dockerignore names the vendor files of serve/client.py again (a build context cannot
    import it): this keeps the two lists equal."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    prefix = "!client/node_modules/"
    kept = {line.removeprefix(prefix) for line in lines if line.startswith(prefix)}
    assert kept == set(VENDOR_FILES.values())
    assert "client/node_modules/" in lines


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    return Podman(tmp_path_factory.mktemp("podman") / "containers.conf")


@pytest.fixture(scope="module")
def base_image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    if os.environ.get("EMOTION_BASE_IMAGE"):
        return os.environ["EMOTION_BASE_IMAGE"]
    if podman("image", "exists", LOCAL_BASE, check=False).returncode != 0:
        root = tmp_path_factory.mktemp("bookworm") / "rootfs"
        packages = "--include=python3,python3-venv,ca-certificates"
        mirror = "http://deb.debian.org/debian"
        made = subprocess.run(
            ["debootstrap", "--variant=minbase", packages, "bookworm", str(root), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr[-3000:]
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        podman("import", "-", LOCAL_BASE, stdin=tar.stdout)
        tar.wait()
    return LOCAL_BASE


def build_image(podman: Podman, dockerfile: str, tag: str, base: str, *options: str) -> str:
    """``podman build`` of ``docker/<dockerfile>`` as ``tag`` on ``base``; the image the tag
    named before is removed once nothing uses it (rebuilds leave no multi-GB leftovers)."""
    before = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    build = ["build", "--runtime", "runc", "--network", "host", *options]
    if CA_BUNDLE.is_file():  # the system's CA bundle: trusts a TLS-inspecting proxy, if any
        build += ["--secret", f"id=ca,src={CA_BUNDLE}"]
    build += ["-f", f"docker/{dockerfile}", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, "."]
    podman(*build, cwd=REPO)
    after = podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    if before and before != after:
        podman("rmi", before, check=False)
    return tag


@pytest.fixture(scope="module")
def serve_image(podman: Podman, base_image: str) -> str:
    return build_image(podman, "serve.Dockerfile", SERVE_IMAGE, base_image)


@pytest.fixture
def server(podman: Podman, serve_image: str) -> Iterator[tuple[str, float]]:
    """The image's server on a free port; yields (base URL, seconds from `run` to an answer)."""
    port = free_port()
    name = f"emotion-serve-{port}"
    args = ["emotion", "serve", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--model-dir", "release/fer2013-v1"]
    start = time.monotonic()
    podman("run", "-d", "--network", "host", "--name", name, serve_image, *args)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            state = podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip()
            alive = state == "running" and time.monotonic() < start + 120
            assert alive, f"container {state}:\n{podman('logs', name, check=False).stderr}"
            time.sleep(0.25)
        yield url, time.monotonic() - start
    finally:
        podman("rm", "-f", name, check=False)


@pytest.mark.slow
@pytest.mark.e2e
def test_the_serving_image_has_no_torch_and_classifies_a_photo(
    podman: Podman, serve_image: str, server: tuple[str, float]
) -> None:
    url, first_answer = server
    buf = io.BytesIO()
    astronaut().save(buf, "JPEG", quality=90)
    photo = {"file": ("astronaut.jpg", buf.getvalue())}
    response = httpx.post(f"{url}/predict", files=photo, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body["predictions"]) == CLASSES
    assert body["face_detected"] is True
    box = body["face_box"]
    assert np.allclose([box[k] for k in ("x", "y", "width", "height")], ASTRONAUT_FACE, atol=8)
    metadata = httpx.get(f"{url}/metadata", timeout=10).json()
    assert "FER2013" in json.dumps(metadata)  # the released real-face model, with its card
    assert httpx.get(f"{url}/app/", timeout=10).status_code == 200  # the on-device client
    no_torch = podman("run", "--rm", serve_image, "python3", "-c", "import torch", check=False)
    assert no_torch.returncode != 0
    assert "No module named 'torch'" in no_torch.stderr
    size = int(podman("image", "inspect", "--format", "{{.Size}}", serve_image).stdout)
    print(f"serving image: {size / 1e6:.0f} MB; /health answered {first_answer:.1f} s after run")
    assert size < 2e9  # no CUDA libraries or PyTorch slipped in


def pip_mirror() -> tuple[list[str], dict[str, str]]:
    """The local package sources this machine's pip is configured with, as podman volume
    options and ``PIP_*`` variables: (``-v`` arguments, variables); empty where there are none."""
    listed = run([str(REPO / ".venv/bin/python"), "-m", "pip", "config", "list"], REPO).stdout
    config = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        config[key.rsplit(".", 1)[-1]] = value.strip("'\"")
    env, folders = {}, set()
    for key, var in (("extra-index-url", "PIP_EXTRA_INDEX_URL"), ("find-links", "PIP_FIND_LINKS")):
        local = [u for u in config.get(key, "").split() if u.startswith(("file://", "/"))]
        for url in local:
            path = Path(url.removeprefix("file://"))
            folders.add(path.parent if path.name == "simple" else path)
        if local:
            env[var] = " ".join(local)
    volumes = [a for folder in sorted(folders) for a in ("-v", f"{folder}:{folder}:ro")]
    return volumes, env


def pipeline_run(image: str, project: Path) -> list[str]:
    """``podman run`` arguments for the pipeline image on ``project`` mounted at /work (a command
    follows them): host network and this machine's pip sources for the assets stage's download."""
    volumes, env = pip_mirror()
    args = ["run", "--rm", "--network", "host", *volumes, "-v", f"{project}:/work"]
    args += [a for name, value in env.items() for a in ("-e", f"{name}={value}")]
    if CA_BUNDLE.is_file():  # pip behind a TLS-inspecting proxy, if any
        args += ["-v", f"{CA_BUNDLE}:/etc/emotion-ca.crt:ro", "-e", "PIP_CERT=/etc/emotion-ca.crt"]
    return [*args, "-e", "EMOTION_WORKERS=1", image]


@pytest.fixture(scope="module")
def pipeline_image(podman: Podman, base_image: str) -> str:
    volumes, env = pip_mirror()
    mirror = [*volumes, *(a for kv in env.items() for a in ("--build-arg", "=".join(kv)))]
    return build_image(podman, "pipeline.Dockerfile", PIPELINE_IMAGE, base_image, *mirror)


@pytest.mark.slow
@pytest.mark.e2e
def test_the_pipeline_image_runs_dvc_repro_on_a_mounted_clone(
    podman: Podman, pipeline_image: str, tmp_path: Path
) -> None:
    """A clone mounted at /work: the image's `dvc repro` runs the tiny config end to end on the
    CPU, with the clone's own code (an editable install of /work/src), and leaves it current."""
    project = copy_repo(tmp_path / "project")
    (project / "src/emotion/__init__.py").write_text(
        (project / "src/emotion/__init__.py").read_text() + "MOUNTED_CLONE = True\n"
    )
    commit(project, "tiny config")
    args = pipeline_run(pipeline_image, project)

    def inside(*cmd: str) -> str:
        return podman(*args, *cmd).stdout

    code = "import emotion, torch; print(emotion.MOUNTED_CLONE, torch.version.cuda is not None)"
    assert inside("python3", "-c", code).split() == ["True", "True"]  # the CUDA build, on CPU
    inside("dvc", "repro")
    status = json.loads(inside("dvc", "status", "--json") or "{}")
    assert status == {}
    metrics = json.loads((project / "metrics/eval.json").read_text())
    assert 0.0 <= metrics["acc"] <= 1.0
    assert (project / "models/model.onnx").is_file()
    size = int(podman("image", "inspect", "--format", "{{.Size}}", pipeline_image).stdout)
    print(f"pipeline image: {size / 1e9:.2f} GB")
