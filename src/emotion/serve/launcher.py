"""``emotion serve``: uvicorn with one or several worker processes, HTTP or HTTPS.

Several workers (``workers > 1``) are separate processes, each loading the model; uvicorn needs
an import string then, so the settings travel in ``EMOTION_SERVE_SETTINGS`` (JSON) and
:func:`create_app_from_environment` builds each worker's app. Prometheus' multiprocess mode
sums their metrics (:mod:`emotion.serve.observability`). Everything that can be wrong with the
settings (model, face detector, TLS files) is checked once in the parent process before any
worker starts, so a broken model ends the command with a message instead of workers that
uvicorn restarts for ever.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from emotion.core.errors import ConfigError
from emotion.serve.app import create_app
from emotion.serve.inference import Predictor
from emotion.serve.memory import return_freed_memory
from emotion.serve.observability import MULTIPROCESS_ENV
from emotion.serve.protocol import ServeConfig
from emotion.serve.settings import ServeSettings

SETTINGS_ENV = "EMOTION_SERVE_SETTINGS"


def settings_to_json(settings: ServeSettings) -> str:
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in vars(settings).items()})


def settings_from_json(text: str) -> ServeSettings:
    data = json.loads(text)
    paths = {f.name for f in dataclasses.fields(ServeSettings) if f.type in ("Path", Path)}
    return ServeSettings(**{k: Path(v) if k in paths else v for k, v in data.items()})


def create_app_from_environment() -> FastAPI:
    """uvicorn's app factory in each worker process: the settings ``run`` put in the environment."""
    return_freed_memory()
    return create_app(settings_from_json(os.environ[SETTINGS_ENV]))


def log_config() -> dict[str, Any]:
    """uvicorn's logging plus the server's own loggers (the JSON access line among them)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["emotion"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def check_tls(certfile: Path | None, keyfile: Path | None) -> None:
    if (certfile is None) != (keyfile is None):
        raise ConfigError("HTTPS needs both --ssl-certfile and --ssl-keyfile (PEM files)")
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise ConfigError(f"{path}: not found; see the README (Serving, HTTPS) to make one")
    if certfile is None or keyfile is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"{certfile} + {keyfile}: not a PEM certificate and its private key ({exc}); "
            "see docs/serving.md (HTTPS) to make a matching pair"
        ) from None


def run(
    settings: ServeSettings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Serve until interrupted (uvicorn's own access log is off: ours has one line per request)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    check_tls(ssl_certfile, ssl_keyfile)
    return_freed_memory()
    if workers > 1:  # every worker would fail the same way, and uvicorn restarts them for ever
        Predictor.from_settings(settings).close()
        os.environ[SETTINGS_ENV] = settings_to_json(settings)
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="emotion-metrics-")
    app: Any = (
        create_app(settings)
        if workers == 1
        else "emotion.serve.launcher:create_app_from_environment"
    )
    config = ServeConfig(
        app,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        access_log=False,
        log_config=log_config(),
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keepalive_timeout,
        timeout_headers=settings.header_timeout,
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    config.load_app()
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise ConfigError(f"the server did not start on {host}:{port}; see the log above")


@contextmanager
def serve_in_thread(app: FastAPI, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL.

    For notebooks, benchmarks and tests: the server stops when the block exits.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(ServeConfig(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
