"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served offline.

FastAPI's own pages load Swagger UI's and ReDoc's scripts and styles from a public CDN (and the favicon from
fastapi.tiangolo.com), so without internet ``/docs`` is a blank page. :func:`install_docs` replaces them with the same
pages (FastAPI's ``get_swagger_ui_html`` / ``get_redoc_html``, as in its "self-hosting JavaScript and CSS for docs"
guide) whose assets the server itself serves, from the files of the ``fastapi-offline`` package (Swagger UI 5, which
renders OpenAPI 3.1, ReDoc 2 and a favicon), installed with ``pip install 'shortlist[server]'``. Swagger UI's online
validator badge (an image from validator.swagger.io) is turned off; ReDoc's Google fonts are left out.

Every URL in the pages is a path on this server: ``tests/integration/server/test_server_browser.py`` checks that a
headless Chromium opening ``/docs`` requests nothing from anywhere else and renders the operations.
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.routing import BaseRoute, Route

__all__ = ["ASSETS_URL", "ASSET_PATHS", "CSP", "assets_dir", "install_docs"]

logger = logging.getLogger(__name__)

#: Where the pages' files are served; the paths are public like the pages (see ``shortlist.server.auth``).
ASSETS_URL = "/docs/assets"
#: The files the pages load, with their media types.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
ASSET_PATHS = frozenset(f"{ASSETS_URL}/{name}" for name in _ASSETS)
#: Swagger UI settings on top of FastAPI's: no online validator (its badge is an image from validator.swagger.io).
_SWAGGER_PARAMETERS = {"validatorUrl": None}
#: The pages' Content-Security-Policy: the browser loads and connects to nothing but this server (ReDoc's bundle has
#: its footer logo on cdn.redoc.ly hard-coded: blocked, ReDoc hides the image). The pages' start-up scripts and the
#: bundles' styles are inline; ReDoc's search runs in a blob: worker.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
_MISSING = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
    "<h1>{title}</h1><p>The interactive documentation needs the server extra's <code>fastapi-offline</code> "
    "package (its scripts are served from this machine, never from a CDN): "
    "<code>pip install 'shortlist[server]'</code>. The API's description is at "
    "<a href='{openapi}'>{openapi}</a>.</p></body></html>"
)


def assets_dir() -> Path | None:
    """The folder of the installed Swagger UI / ReDoc files, or ``None`` if ``fastapi-offline`` is missing."""
    try:
        root = Path(str(importlib.resources.files("fastapi_offline"))) / "static"
    except ModuleNotFoundError:
        return None
    return root if all((root / name).is_file() for name in _ASSETS) else None


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its OAuth2 redirect and ``/redoc`` with assets from this server instead of FastAPI's CDN.

    Replaces the routes FastAPI added for ``app.docs_url``, ``app.swagger_ui_oauth2_redirect_url`` and
    ``app.redoc_url`` (a ``None`` URL stays off). Without ``fastapi-offline`` installed, the pages say how to
    install it (still with no external URL), and a warning is logged once.
    """
    pages = {app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url} - {None}
    app.router.routes[:] = [r for r in app.router.routes if not _is_page(r, pages)]
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"
    static = assets_dir()
    if static is None:
        logger.warning("fastapi-offline is not installed: /docs and /redoc say how to install it (pip install "
                       "'shortlist[server]')")  # fmt: skip
    else:
        for name, media_type in _ASSETS.items():
            _add_asset(app, static / name, media_type)

    def page(kind: str) -> HTMLResponse:
        return HTMLResponse(_MISSING.format(title=f"{title} - {kind}", openapi=openapi_url), status_code=503)

    def local(response: HTMLResponse) -> HTMLResponse:
        response.headers["Content-Security-Policy"] = CSP
        return response

    if app.docs_url is not None:
        oauth2 = app.swagger_ui_oauth2_redirect_url

        @app.get(app.docs_url, include_in_schema=False)
        async def swagger_ui(request: Request) -> HTMLResponse:
            if static is None:
                return page("Swagger UI")
            root = request.scope.get("root_path", "")
            return local(
                get_swagger_ui_html(
                    openapi_url=root + openapi_url,
                    title=f"{title} - Swagger UI",
                    oauth2_redirect_url=root + oauth2 if oauth2 else None,
                    swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                    swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                    swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                    swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **_SWAGGER_PARAMETERS},
                )
            )

        if oauth2 is not None:

            @app.get(oauth2, include_in_schema=False)
            async def swagger_ui_redirect() -> HTMLResponse:
                return local(get_swagger_ui_oauth2_redirect_html())

    if app.redoc_url is not None:

        @app.get(app.redoc_url, include_in_schema=False)
        async def redoc(request: Request) -> HTMLResponse:
            if static is None:
                return page("ReDoc")
            root = request.scope.get("root_path", "")
            return local(
                get_redoc_html(
                    openapi_url=root + openapi_url,
                    title=f"{title} - ReDoc",
                    redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                    redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                    with_google_fonts=False,
                )
            )


def _is_page(route: BaseRoute, pages: set[str | None]) -> bool:
    return isinstance(route, Route) and route.path in pages


def _add_asset(app: FastAPI, path: Path, media_type: str) -> None:
    async def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    app.add_api_route(f"{ASSETS_URL}/{path.name}", asset, methods=["GET"], include_in_schema=False)
