"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), self-hosted.

FastAPI's own pages load their JavaScript and CSS from a CDN; these load them from this server
(``/docs-assets/``), so the reference also works offline and behind a firewall. The files come
from the pinned ``fastapi-offline`` package (Swagger UI 5, ReDoc 2), as FastAPI documents under
"self-hosting JavaScript and CSS for docs". A Content-Security-Policy keeps both pages on this
server: ReDoc's sidebar would otherwise fetch its maker's logo from their CDN.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the pages' JavaScript, CSS and icon are served.
ASSETS = "/docs-assets"
#: The package (and its folder) that holds them.
ASSETS_PACKAGE = ("fastapi_offline", "static")
#: What the pages may load: this server's files, their own inline code, data: and blob: URLs.
POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
    )
)


def _local(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    return page


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` with local assets (create ``app`` with ``docs_url=None``
    and ``redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return _local(
            get_swagger_ui_html(
                openapi_url=f"{base}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{base}{ASSETS}/favicon.png",
                # no badge fetched from the public validator service
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return _local(
            get_redoc_html(
                openapi_url=f"{base}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{base}{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{base}{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )
