"""The HTTP API and web page: ``create_app(settings)`` -> a FastAPI app (run it with uvicorn).

Every error is JSON ``{"detail": "<what is wrong and what to do>"}``: 400 malformed body,
408 body too slow, 413 too large (bytes, pixels or a side), 415 unsupported content or image
type, 422 unusable input (empty, corrupt, missing field, no face found), 503 every prediction
slot taken (with ``Retry-After``; :mod:`emotion.serve.admission`), 500 a bug (logged; the server
keeps serving). A client that disconnects mid-upload is logged as 499, without a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from emotion.core.errors import DataError
from emotion.serve.admission import RETRY_AFTER, Admission, ServerBusyError
from emotion.serve.client import ISOLATION_HEADERS, PRECACHE, ClientFiles
from emotion.serve.docs import install_docs
from emotion.serve.images import ImageError
from emotion.serve.inference import NoFaceError, Predictor
from emotion.serve.memory import HeapTrimmer, trim_heap
from emotion.serve.observability import ServingMetrics, install
from emotion.serve.schemas import (
    ErrorResponse,
    FaceResult,
    HealthResponse,
    MetadataResponse,
    PredictResponse,
)
from emotion.serve.settings import ServeSettings
from emotion.serve.uploads import FIELD, JSON_FIELD, read_image_bytes

log = logging.getLogger(__name__)

PREDICT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FIELD],
                "properties": {FIELD: {"type": "string", "format": "binary"}},
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": [JSON_FIELD],
                "properties": {
                    JSON_FIELD: {
                        "type": "string",
                        "description": "image file bytes in base64; a data: URL prefix is fine",
                    }
                },
            }
        },
    },
}
ERRORS = {code: {"model": ErrorResponse} for code in (400, 408, 413, 415, 422, 503)}
#: status logged for a client that went away before its request was read (nginx's convention)
CLIENT_CLOSED = 499


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ImageError)
    async def image_rejected(_: Request, exc: ImageError) -> JSONResponse:
        return _error(exc.status, exc.detail)

    @app.exception_handler(NoFaceError)
    async def no_face(_: Request, exc: NoFaceError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(ServerBusyError)
    async def busy(_: Request, exc: ServerBusyError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER)}
        )

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_: Request, __: ClientDisconnect) -> JSONResponse:
        return _error(CLIENT_CLOSED, "the client disconnected before its upload was complete")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{' '.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error(422, f"invalid request: {problems}")

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error while serving a request", exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}); please report it")


def create_app(settings: ServeSettings) -> FastAPI:
    """Load the model (and face detector) now, so that bad settings fail before serving."""
    predictor = Predictor.from_settings(settings)
    static = files("emotion.serve") / "static"
    index_html = (static / "index.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with predictor:
            yield

    app = FastAPI(
        title="Emotion recognition",
        description="Facial emotion recognition with an exported ONNX model.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: the same pages, with their files served from here
        redoc_url=None,
    )
    app.state.predictor = predictor
    _install_error_handlers(app)
    model = predictor.model
    install(
        app,
        ServingMetrics(
            {"variant": model.variant, "sha256": model.sha256[:12], "tta": predictor.tta.mode}
        ),
    )
    app.mount("/static", StaticFiles(packages=[("emotion.serve", "static")]), name="static")
    install_docs(app)
    _add_info_routes(app, predictor, settings, index_html)
    _add_predict_route(app, predictor, settings)
    _add_client_routes(app, settings)
    return app


#: Content types Python's ``mimetypes`` may not know, for the client's files.
CLIENT_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".json": "application/json",
}


def _add_client_routes(app: FastAPI, settings: ServeSettings) -> None:
    """``/app/``: the on-device client (``emotion.serve.client``), cross-origin isolated."""
    try:
        client: ClientFiles | None = ClientFiles.collect(
            settings.client_dir, settings.model_dir, settings.face_model
        )
    except DataError as exc:
        log.warning("%s; /app/ answers 503 until then", exc)
        client, problem = None, str(exc)

    @app.get("/app", include_in_schema=False)
    async def app_root() -> RedirectResponse:
        return RedirectResponse("/app/")

    @app.get("/app/{path:path}", include_in_schema=False, response_model=None)
    async def app_file(path: str) -> FileResponse | JSONResponse:
        if client is None:
            return _error(503, problem)
        if path == PRECACHE:
            return JSONResponse(client.precache, headers=ISOLATION_HEADERS)
        file = client.files.get(path or "index.html")
        if file is None:
            return _error(404, f"/app/{path}: not a file of the on-device client")
        media = CLIENT_MEDIA_TYPES.get(file.suffix, "application/octet-stream")
        return FileResponse(file, media_type=media, headers=ISOLATION_HEADERS)


def _add_info_routes(
    app: FastAPI, predictor: Predictor, settings: ServeSettings, index_html: str
) -> None:
    """``/`` (the page), ``/health`` and ``/metadata``."""
    model = predictor.model

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return index_html

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> RedirectResponse:
        return RedirectResponse("/app/icon.svg")  # the on-device client's icon

    async def health() -> HealthResponse:
        return HealthResponse(
            status="ok", variant=model.variant, face_detection=predictor.detects_faces
        )

    app.get("/health")(health)
    app.head("/health", include_in_schema=False)(health)  # load balancers' probes use HEAD

    @app.get("/metadata")
    async def metadata() -> MetadataResponse:
        return MetadataResponse(
            **model.describe(),
            tta=predictor.tta.to_dict(),
            face_detection={
                "enabled": predictor.detects_faces,
                "fallback_to_whole_image": settings.face_fallback,
                "model": settings.face_model.name if predictor.detects_faces else None,
            },
            limits={
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "max_side": settings.max_side,
                "max_in_flight": settings.max_in_flight,
                "max_faces": settings.max_faces,
            },
        )


def _add_predict_route(app: FastAPI, predictor: Predictor, settings: ServeSettings) -> None:
    """``POST /predict``: an uploaded image (multipart or JSON base64) -> probabilities."""
    admission = Admission(settings.max_in_flight)
    trimmer = HeapTrimmer()

    @app.post("/predict", responses=ERRORS, openapi_extra={"requestBody": PREDICT_BODY})
    async def predict(
        request: Request,
        detect_face: Annotated[bool, Query(description="false: classify the whole image")] = True,
        explain: Annotated[
            bool, Query(description="true: add the occlusion saliency of the predicted class")
        ] = False,
        all_faces: Annotated[
            bool, Query(description="true: every face in `faces` (at most the server's limit)")
        ] = False,
    ) -> PredictResponse:
        """Emotion probabilities for the largest face in an uploaded image (or every face)."""
        max_faces = settings.max_faces if all_faces else 1
        try:
            with admission.slot():
                data = await read_image_bytes(
                    request, settings.max_upload_bytes, settings.body_timeout
                )
                result = await run_in_threadpool(
                    predictor.predict_bytes, data, detect_face, explain, max_faces
                )
        finally:
            if trimmer.due(
                explained=explain,
                large_decodes=predictor.gate.large_decodes,
                in_flight=admission.in_flight,
                now=time.monotonic(),
            ):  # the last one in flight after costly ones: give the burst's freed memory back
                await run_in_threadpool(trim_heap)
        main = result.main
        request.state.prediction = {
            "face_found": main.face is not None,
            "predicted_class": main.predicted_class,
            "faces": len(result.faces),
        }
        return PredictResponse(
            **FaceResult.of(main).model_dump(),
            processing_time=result.processing_time,
            face_detected=main.face is not None,
            faces=[FaceResult.of(face) for face in result.faces] if all_faces else None,
        )
