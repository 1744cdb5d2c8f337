"""One structured access-log line per request, and Prometheus metrics at ``/metrics``.

The access line (logger ``emotion.serve.access``) is JSON: method, path, status, latency, and for
``/predict`` whether a face was found and the predicted class; never image bytes or file names.
Metrics use ``prometheus_client``: request counts by route and status, a latency histogram per
route, predictions per class, faces found or not, and the served model as a labelled gauge.
Every label value comes from a fixed set (routes of the app, HTTP's standard methods, status
codes, the model's classes), so no request can grow ``/metrics``: an unknown method is counted as
``OTHER``, an unknown path as ``unmatched``.
With several worker processes (``emotion serve --workers N``) ``PROMETHEUS_MULTIPROC_DIR`` is
set, and every worker's values are summed into each scrape (the library's multiprocess mode).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.routing import Mount

access_log = logging.getLogger("emotion.serve.access")
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: latency buckets (seconds): a 48 px face takes milliseconds, a 12 MP photo with TTA ~0.1 s
BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: HTTP methods counted by name (RFC 9110 and PATCH); any other is ``OTHER``
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
#: longest method name written to the access log (h11 accepts any token as a method)
LOGGED_METHOD_CHARS = 16
#: longest path written to the access log
LOGGED_PATH_CHARS = 256


def method_label(method: str) -> str:
    """``method`` if it is a standard HTTP method, else ``OTHER``."""
    return method if method in METHODS else "OTHER"


def route_label(request: Request) -> str:
    """The matched route's path template, a mounted app's (``/static/{path}``), or
    ``unmatched``: never the raw path, so the label set is the app's routes."""
    route = request.scope.get("route")
    if route is not None:
        return route.path
    endpoint = request.scope.get("endpoint")
    for mount in request.app.routes:
        if isinstance(mount, Mount) and mount.app is endpoint:
            return f"{mount.path}/{{path}}"
    return "unmatched"


class ServingMetrics:
    """The server's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self, model: dict[str, str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "emotion_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "emotion_request_duration_seconds",
            "request latency",
            ["route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "emotion_predictions", "predictions by class", ["predicted_class"], registry=r
        )
        self.faces = Counter("emotion_faces", "predictions by face found", ["found"], registry=r)
        info = Gauge(
            "emotion_model_info",
            "the served model (value 1)",
            list(model),
            registry=r,
            multiprocess_mode="liveall",  # one sample per live worker (label pid)
        )
        info.labels(**model).set(1)

    def exposition(self) -> bytes:
        """The text format of every metric (all worker processes in multiprocess mode)."""
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def install(app: FastAPI, metrics: ServingMetrics) -> None:
    """The access-log + metrics middleware and the ``/metrics`` route."""

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500  # an exception escaping the app is answered 500 further out
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            record(request, status, time.perf_counter() - start)
        return response

    def record(request: Request, status: int, latency: float) -> None:
        route = route_label(request)
        metrics.requests.labels(method_label(request.method), route, str(status)).inc()
        metrics.latency.labels(route).observe(latency)
        line: dict[str, Any] = {
            "method": request.method[:LOGGED_METHOD_CHARS],
            "path": request.url.path[:LOGGED_PATH_CHARS],
            "status": status,
            "latency_ms": round(1000 * latency, 2),
        }
        prediction = getattr(request.state, "prediction", None)
        if prediction is not None:
            line |= prediction
            metrics.faces.labels(str(prediction["face_found"]).lower()).inc()
            metrics.predictions.labels(prediction["predicted_class"]).inc()
        access_log.info(json.dumps(line))

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
