"""Errors of ``shortlist serve``: :class:`ApiError`, the one mapping of shortlist's errors to HTTP statuses, and
the handlers that answer every error in the calling API's shape.

Errors use the calling API's shape: ``{"error": "..."}`` on Ollama-style routes (``/api/...``, ``/health``) and
``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`` on OpenAI-style routes (``/v1/...``), so
the official clients show the message.
"""  # noqa: D205

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shortlist.batching import BatcherBusyError
from shortlist.config import ChromaServer, is_unreachable
from shortlist.errors import EmbeddingModelMismatchError, ShortlistError, StoreError

__all__ = ["ErrorResponses", "ApiError", "api_error", "error_body", "install_error_handlers", "status_of"]

logger = logging.getLogger(__name__)

#: The error answers, for the OpenAPI document.
ErrorResponses: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad input (empty text, too many texts, text too long, bad filter...): `error` says which."},
    401: {"description": "The API key is missing or wrong (only when SHORTLIST_API_KEY is set)."},
    404: {"description": "Unknown model or collection."},
    413: {"description": "The request body is over the server's limit."},
    503: {
        "description": "The embedding queue is full (retry after `Retry-After` seconds), or the Chroma database "
        "cannot be read (a Chroma server that is down: `error` names it; searches work again once it is back)."
    },
}

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_busy",
}


class ApiError(Exception):
    """An HTTP error with a message that says what to change (rendered in the calling API's shape).

    Args:
        status: HTTP status code.
        message: What went wrong and what to do instead.
        param: The request field at fault, if any.
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, message: str, *, param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.headers = headers


# ---------------------------------------------------------------------------------------------- the one mapping
def _is_chroma_argument_error(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    try:
        from chromadb.errors import InvalidArgumentError
    except ImportError:  # pragma: no cover - chromadb is a core dependency
        return False
    return isinstance(exc, InvalidArgumentError)


def status_of(exc: ShortlistError) -> int:
    """The HTTP status of one of shortlist's errors: the server's one mapping.

    A full embedding queue is 503 (retry); a collection made with another model 409; a request Chroma refused
    (a where filter its parser rejects) 400, any other store failure 503; every other error of shortlist (bad
    input, bad option) 400.
    """
    if isinstance(exc, BatcherBusyError):
        return 503
    if isinstance(exc, EmbeddingModelMismatchError):
        return 409
    if isinstance(exc, StoreError):
        return 400 if _is_chroma_argument_error(exc.__cause__) else 503
    return 400


def api_error(exc: ShortlistError, *, param: str | None = None, server: ChromaServer | None = None) -> ApiError:
    """``exc`` as the :class:`ApiError` the client gets (status from :func:`status_of`); a store failure on a
    Chroma ``server`` names it (and, when it cannot be reached, says to check that it runs)."""  # noqa: D205, D209
    status = status_of(exc)
    message = str(exc)
    headers = None
    if isinstance(exc, BatcherBusyError):
        headers = {"Retry-After": "1"}
    elif isinstance(exc, StoreError) and not isinstance(exc, EmbeddingModelMismatchError):
        prefix = "Chroma refused the request" if status == 400 else "The collection could not be searched"
        message = f"{prefix}: {exc if server is None or status == 400 else server.explain(exc)}"
    return ApiError(status, message, param=param, headers=headers)


# ---------------------------------------------------------------------------------------------- rendering
def error_body(path: str, status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """The JSON body of an error in the style of the API the path belongs to."""
    if path.startswith("/v1/"):
        kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return {"error": message}


def _json_error(
    path: str,
    status: int,
    message: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = error_body(path, status, message, param)
    body.update(extra)
    response = JSONResponse(body, status_code=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json_error(request.url.path, exc.status, exc.message, exc.param, exc.headers)


async def _shortlist_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShortlistError)
    service = getattr(request.app.state, "service", None)
    server = getattr(service, "db", None)
    return await _api_error(request, api_error(exc, server=server if isinstance(server, ChromaServer) else None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    parts = []
    for err in errors[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    msg = "Invalid request: " + "; ".join(parts) + more + ". See /docs for the expected body."
    param = ".".join(str(p) for p in errors[0].get("loc", ())[1:]) if errors else None
    detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
    return _json_error(request.url.path, 422, msg, param or None, detail=detail)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _json_error(request.url.path, exc.status_code, str(exc.detail), headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    if is_unreachable(exc):  # a connection (to Chroma) that failed outside shortlist's own errors: still a 503
        logger.warning("unreachable store on %s: %r", request.url.path, exc)
        server = getattr(getattr(request.app.state, "service", None), "db", None)
        where = server.explain(exc) if isinstance(server, ChromaServer) else " ".join(str(exc).split())
        return _json_error(request.url.path, 503, f"The collection could not be searched: {where}")
    logger.exception("unhandled error on %s", request.url.path)
    msg = f"Internal error ({type(exc).__name__}); the server log has the details."
    return _json_error(request.url.path, 500, msg)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the calling API's shape: :class:`ApiError`, shortlist's own errors (by
    :func:`status_of`), request validation (422), HTTP errors (404, 405...) and anything unexpected (500).
    """  # noqa: D205
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ShortlistError, _shortlist_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
