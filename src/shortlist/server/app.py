"""The FastAPI application behind ``shortlist serve``.

Build it with :func:`create_app`; run it with uvicorn (``shortlist serve`` does). One encoder serves every route,
concurrent embedding requests share encoder batches (:class:`~shortlist.server.batcher.EmbeddingBatcher`), and
every input is bounded (body size, number of texts, characters per text), each limit answered with a 4xx that
says what to change.

Errors use the calling API's shape: ``{"error": "..."}`` on Ollama-style routes (``/api/...``, ``/health``) and
``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`` on OpenAI-style routes (``/v1/...``), so
the official clients show the message.
"""

from __future__ import annotations

import base64
import csv
import hmac
import io
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from shortlist import __version__
from shortlist.config import resolve_chroma_path
from shortlist.errors import ConfigError, EmbeddingModelMismatchError, InputError, ShortlistError, StoreError
from shortlist.server.batcher import EmbeddingBatcher, ServerBusyError
from shortlist.server.models import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    HealthResponse,
    OpenAIEmbeddingsRequest,
    OpenAIEmbeddingsResponse,
    SearchRequest,
    SearchResponse,
    SimilarityBatchRequest,
    SimilarityBatchResponse,
    SimilarityRequest,
    SimilarityResponse,
)
from shortlist.text import clean_text

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.prefilter import Prefilter

__all__ = ["ENV_API_KEY", "ApiError", "Limits", "create_app"]

logger = logging.getLogger(__name__)

#: Environment variable holding the API key; when set, every API request must carry it.
ENV_API_KEY = "SHORTLIST_API_KEY"
#: Paths served without the API key: the web page (it asks for the key) and the API's description.
PUBLIC_PATHS = frozenset({"/", "/favicon.ico", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
#: Routes that take a form upload; every other POST body is JSON, whatever its Content-Type says.
FORM_PATHS = frozenset({"/api/similarity/csv"})
#: Ollama's tags of all-MiniLM-L6-v2 and the model's own names, all accepted as ``model``.
MINILM_ALIASES = (
    "all-minilm",
    "all-minilm:latest",
    "all-minilm:l6-v2",
    "all-minilm:22m",
    "all-minilm-l6-v2",
    "all-minilm-l6-v2:latest",
    "sentence-transformers/all-minilm-l6-v2",
)
OLLAMA_NAME = "all-minilm:latest"
CSV_HEADER_NAMES = frozenset(
    {"text1", "text2", "text_1", "text_2", "text a", "text b", "text_a", "text_b", "a", "b", "sentence1",
     "sentence2", "sentence_1", "sentence_2", "left", "right", "query", "document", "source", "target"}
)  # fmt: skip

ErrorResponses: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad input (empty text, too many texts, text too long, bad filter...): `error` says which."},
    401: {"description": "The API key is missing or wrong (only when SHORTLIST_API_KEY is set)."},
    404: {"description": "Unknown model or collection."},
    413: {"description": "The request body is over the server's limit."},
    503: {"description": "The embedding queue is full: retry after `Retry-After` seconds."},
}


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for.

    Attributes:
        max_body_bytes: Largest request body (default 4 MiB); larger is 413.
        max_inputs: Most texts in one embedding request, pairs in one batch similarity (default 512); more is 400.
        max_text_chars: Longest text in characters (default 16384); longer is 400. Texts over the model's window
            (254 word pieces) are embedded window by window and mean-pooled, unless the request says
            ``truncate: false``.
        max_csv_rows: Most rows in an uploaded CSV file (default 10000).
        max_queue: Most texts waiting for the encoder (default 8192); beyond it requests get 503.
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_inputs: int = 512
    max_text_chars: int = 16_384
    max_csv_rows: int = 10_000
    max_queue: int = 8192

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"Limits.{name} must be a positive int, got {value!r}."
                raise ConfigError(msg)


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


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_busy",
}


def error_body(path: str, status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """The JSON body of an error in the style of the API the path belongs to."""
    if path.startswith("/v1/"):
        kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return {"error": message}


def _json_error(path: str, status: int, message: str, param: str | None = None, **extra: Any) -> JSONResponse:
    body = error_body(path, status, message, param)
    body.update(extra)
    return JSONResponse(body, status_code=status)


# ---------------------------------------------------------------------------------------------- middleware
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    import json

    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class GuardMiddleware:
    """Check the API key, then read the body up to ``max_body_bytes`` (413 beyond), before the app sees it."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.api_key is not None and path not in PUBLIC_PATHS and not self._authorised(headers):
            msg = (
                f"Missing or wrong API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
                f"(the server's {ENV_API_KEY})."
            )
            await _send_json(send, 401, error_body(path, 401, msg), {"WWW-Authenticate": "Bearer"})
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = (
            f"The request body is larger than the server's limit of {self.max_body_bytes:,} bytes: "
            "send fewer or shorter texts per request."
        )
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _send_json(send, 400, error_body(path, 400, "Content-Length is not a number."))
                return
            if int(length) > self.max_body_bytes:
                await _send_json(send, 413, error_body(path, 413, too_big))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                await _send_json(send, 413, error_body(path, 413, too_big))
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        buffered = b"".join(chunks)
        sent = False
        content_type = headers.get("content-type", b"").split(b";", 1)[0].strip().lower()
        if path not in FORM_PATHS and content_type in (b"", b"application/x-www-form-urlencoded", b"text/plain"):
            # `curl -d '{...}'` (Ollama's own examples) labels JSON as a form: read it as the JSON it is.
            raw = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
            scope = {**scope, "headers": [*raw, (b"content-type", b"application/json")]}

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": buffered, "more_body": False}
            return dict(await receive())

        await self.app(scope, replay, send)

    def _authorised(self, headers: dict[str, bytes]) -> bool:
        assert self.api_key is not None
        given = headers.get("x-api-key")
        auth = headers.get("authorization")
        if given is None and auth is not None and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        return given is not None and hmac.compare_digest(given, self.api_key)


# ---------------------------------------------------------------------------------------------- the service
class _Service:
    """The state the routes share: encoder, batcher, limits, the collections' pre-filters."""

    def __init__(
        self,
        encoder: Encoder,
        batcher: EmbeddingBatcher,
        limits: Limits,
        db: Path,
        collection: str,
        prefilter: Prefilter | None,
    ) -> None:
        self.encoder = encoder
        self.batcher = batcher
        self.limits = limits
        self.db = db
        self.collection = collection
        self._prefilters: dict[str, Prefilter] = {}
        if prefilter is not None:
            self._prefilters[prefilter.store.name] = prefilter
        self._lock = threading.Lock()
        names = {encoder.model_name.lower(), encoder.model_name.rsplit("/", 1)[-1].lower()}
        if encoder.model_name.rsplit("/", 1)[-1].lower() == "all-minilm-l6-v2":
            names.update(MINILM_ALIASES)
        self.model_names = frozenset(names)
        self.public_name = "all-minilm" if "all-minilm" in names else encoder.model_name

    # ---------------------------------------------------------------- checks
    def check_model(self, model: str | None, param: str = "model") -> None:
        if model is None or model == "" or model.lower() in self.model_names:
            return
        msg = (
            f"model {model!r} not found: this server embeds with {self.encoder.model_name}; "
            f"use model={self.public_name!r} (or any of {', '.join(sorted(self.model_names))})."
        )
        raise ApiError(404, msg, param=param)

    def check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is not None and dimensions != self.encoder.dimension:
            msg = (
                f"dimensions={dimensions} is not available: {self.encoder.model_name} gives "
                f"{self.encoder.dimension}-dimensional vectors only; leave it out or send {self.encoder.dimension}."
            )
            raise ApiError(400, msg, param="dimensions")

    def check_texts(self, texts: Sequence[str], param: str, *, strict_window: bool = False) -> list[str]:
        """Refuse (400) too many texts, a non-string, an empty text, an over-long one; return them unchanged."""
        limit = self.limits.max_inputs
        if len(texts) > limit:
            msg = f"{param} has {len(texts):,} texts; the limit is {limit:,} per request: send them in batches."
            raise ApiError(400, msg, param=param)
        window = self.encoder.max_text_tokens
        for i, text in enumerate(texts):
            where = f"{param}[{i}]" if len(texts) > 1 or param.endswith("s") else param
            if not isinstance(text, str):
                msg = f"{where} is a {type(text).__name__}: send text strings."
                raise ApiError(400, msg, param=param)
            if len(text) > self.limits.max_text_chars:
                msg = (
                    f"{where} has {len(text):,} characters; the limit is {self.limits.max_text_chars:,}. "
                    "Split long documents (shortlist index does) before embedding."
                )
                raise ApiError(400, msg, param=param)
            prepared = clean_text(text) if self.encoder.clean else text
            if not prepared.strip():
                msg = f"{where} is empty or white space only: there is nothing to embed."
                raise ApiError(400, msg, param=param)
            if strict_window:
                count = self.encoder.count_tokens(text)
                if count > window:
                    msg = (
                        f"{where} has {count} word pieces; the model reads {window} at most and truncate=false "
                        "was asked. Send truncate=true (long texts are then embedded window by window and "
                        "mean-pooled) or split the text."
                    )
                    raise ApiError(400, msg, param=param)
        return list(texts)

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray[Any, np.dtype[np.float32]], list[int]]:
        try:
            return await self.batcher.embed(texts)
        except ServerBusyError as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from exc
        except InputError as exc:
            raise ApiError(400, str(exc)) from exc

    # ---------------------------------------------------------------- collections
    def collection_sizes(self) -> dict[str, int]:
        if not self.db.is_dir() or not any(self.db.iterdir()):
            return {}
        import chromadb
        from chromadb.config import Settings

        client = chromadb.PersistentClient(path=str(self.db), settings=Settings(anonymized_telemetry=False))
        sizes: dict[str, int] = {}
        for col in client.list_collections():
            name = col if isinstance(col, str) else col.name
            sizes[name] = client.get_collection(name).count()
        return dict(sorted(sizes.items()))

    def prefilter(self, name: str | None) -> Prefilter:
        name = name or self.collection
        with self._lock:
            found = self._prefilters.get(name)
            if found is not None:
                return found
            sizes = self.collection_sizes()
            if name not in sizes:
                have = f" (it has: {', '.join(sizes)})" if sizes else ""
                msg = (
                    f"No collection {name!r} in {self.db}{have}. Build it first: "
                    f"shortlist index PATH --collection {name} --db {self.db}"
                )
                raise ApiError(404, msg, param="collection")
            from shortlist.prefilter import Prefilter

            try:
                found = Prefilter(name, path=self.db, encoder=self.encoder)
            except EmbeddingModelMismatchError as exc:
                raise ApiError(409, str(exc), param="collection") from exc
            except ConfigError as exc:
                raise ApiError(400, str(exc), param="collection") from exc
            self._prefilters[name] = found
            return found


def _warm(service: _Service) -> None:
    """Build the default collection's keyword index and hybrid calibration before the first search needs them."""
    try:
        prefilter = service.prefilter(None)
    except ApiError:  # no such collection (yet): nothing to warm
        return
    try:
        prefilter.calibration()
    except Exception:  # a warm-up must not stop the server: the first hybrid search will say what is wrong
        logger.exception("Could not build the keyword index and hybrid calibration of %r at start-up", prefilter)


def _as_list(value: str | list[Any]) -> tuple[list[Any], bool]:
    if isinstance(value, str):
        return [value], True
    return list(value), False


def _page() -> str:
    return resources.files("shortlist.server").joinpath("static/index.html").read_text(encoding="utf-8")


def _resolve_api_key(api_key: str | None) -> str | None:
    if api_key is None:
        api_key = os.environ.get(ENV_API_KEY, "")
    api_key = api_key.strip()
    return api_key or None


# ---------------------------------------------------------------------------------------------- the app
def create_app(
    *,
    encoder: Encoder | None = None,
    db: str | os.PathLike[str] | None = None,
    collection: str = "shortlist",
    prefilter: Prefilter | None = None,
    api_key: str | None = None,
    limits: Limits | None = None,
    batching: bool = True,
    max_batch: int = 64,
    max_wait_ms: float = 0.0,
) -> FastAPI:
    """Build the ``shortlist serve`` application.

    Args:
        encoder: The encoder (default :meth:`Encoder.shared() <shortlist.encoder.Encoder.shared>`; loaded when the
            app starts).
        db: Folder of the embedded Chroma database searched by ``/api/search`` (default: ``SHORTLIST_CHROMA_PATH``,
            else ``<SHORTLIST_HOME>/chroma``). The server never creates a collection.
        collection: Collection searched when a request names none (default ``"shortlist"``).
        prefilter: An already-open pre-filter to serve as that collection (e.g. an in-memory one in a notebook).
        api_key: Key every API request must carry (``Authorization: Bearer <key>`` or ``X-API-Key``). ``None``
            (default): ``SHORTLIST_API_KEY`` if set, else no key; ``""``: no key even if the variable is set.
        limits: Bounds on one request (default :class:`Limits`).
        batching: Combine concurrent embedding requests into encoder batches (default ``True``). ``False`` embeds
            one request at a time (a baseline for benchmarks).
        max_batch: Most texts in one encoder call (default 64).
        max_wait_ms: How long to wait for more requests before running a batch that is not full (default 0).

    Returns:
        The FastAPI application (run it with ``uvicorn.run(app)``).

    Raises:
        ConfigError: on bad limits or batch settings.

    Example:
        ```python
        import uvicorn
        from shortlist.server import create_app

        uvicorn.run(create_app(), host="127.0.0.1", port=11434)
        ```
    """
    if encoder is None:
        from shortlist.encoder import Encoder

        encoder = Encoder.shared()
    limits = limits or Limits()
    key = _resolve_api_key(api_key)
    try:
        batcher = EmbeddingBatcher(
            encoder, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=limits.max_queue, enabled=batching
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    path = resolve_chroma_path(db)
    service = _Service(encoder, batcher, limits, path, collection, prefilter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(encoder.load)
        logger.info("shortlist serve: %s loaded (%s)", encoder.model_name, encoder.backend_name)
        await run_in_threadpool(_warm, service)
        yield
        await batcher.aclose()

    app = FastAPI(
        title="shortlist serve",
        version=__version__,
        summary="Embeddings (Ollama- and OpenAI-compatible), similarity and a retrieval pre-filter on "
        "all-MiniLM-L6-v2.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.batcher = batcher
    app.add_middleware(GuardMiddleware, api_key=key, max_body_bytes=limits.max_body_bytes)
    page = _page()

    # ------------------------------------------------------------------ errors
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = _json_error(request.url.path, exc.status, exc.message, exc.param)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
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

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _json_error(request.url.path, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        msg = f"Internal error ({type(exc).__name__}); the server log has the details."
        return _json_error(request.url.path, 500, msg)

    # ------------------------------------------------------------------ page
    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    # ------------------------------------------------------------------ Ollama
    @app.post("/api/embed", response_model=EmbedResponse, responses=ErrorResponses, tags=["ollama"])
    async def ollama_embed(body: EmbedRequest) -> Response:
        """Embed one text or a list (Ollama's current endpoint)."""
        started = time.perf_counter_ns()
        service.check_model(body.model)
        service.check_dimensions(body.dimensions)
        texts, _ = _as_list(body.input)
        service.check_texts(texts, "input", strict_window=body.truncate is False)
        vectors, counts = await service.embed(texts)
        return JSONResponse(
            {
                "model": body.model or OLLAMA_NAME,
                "embeddings": vectors.tolist(),
                "total_duration": time.perf_counter_ns() - started,
                "load_duration": 0,
                "prompt_eval_count": sum(counts),
            }
        )

    @app.post("/api/embeddings", response_model=EmbeddingsResponse, responses=ErrorResponses, tags=["ollama"])
    async def ollama_embeddings(body: EmbeddingsRequest) -> Response:
        """Embed one text (Ollama's older endpoint)."""
        service.check_model(body.model)
        service.check_texts([body.prompt], "prompt")
        vectors, _ = await service.embed([body.prompt])
        return JSONResponse({"embedding": vectors[0].tolist()})

    @app.get("/api/tags", tags=["ollama"])
    async def ollama_tags() -> dict[str, Any]:
        """The one model this server has, in Ollama's listing shape."""
        source = encoder.source.path
        size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) if source and source.is_dir() else 0
        return {
            "models": [
                {
                    "name": OLLAMA_NAME if service.public_name == "all-minilm" else encoder.model_name,
                    "model": OLLAMA_NAME if service.public_name == "all-minilm" else encoder.model_name,
                    "modified_at": "2024-01-01T00:00:00Z",
                    "size": size,
                    "digest": "",
                    "details": {
                        "format": "safetensors",
                        "family": "bert",
                        "families": ["bert"],
                        "parameter_size": "23M",
                        "quantization_level": "F32",
                    },
                }
            ]
        }

    @app.get("/api/version", tags=["ollama"])
    async def ollama_version() -> dict[str, str]:
        """The server's version (shortlist's)."""
        return {"version": __version__}

    # ------------------------------------------------------------------ OpenAI
    @app.post("/v1/embeddings", response_model=OpenAIEmbeddingsResponse, responses=ErrorResponses, tags=["openai"])
    async def openai_embeddings(body: OpenAIEmbeddingsRequest) -> Response:
        """Embed one text or a list (OpenAI's embeddings endpoint; ``encoding_format`` float or base64)."""
        service.check_model(body.model)
        service.check_dimensions(body.dimensions)
        texts, _ = _as_list(body.input)
        if texts and not all(isinstance(t, str) for t in texts):
            msg = (
                "input holds token ids; this server reads text only. Send the strings (LangChain "
                "OpenAIEmbeddings: check_embedding_ctx_length=False)."
            )
            raise ApiError(400, msg, param="input")
        if not texts:
            msg = "input is an empty list: send at least one text."
            raise ApiError(400, msg, param="input")
        service.check_texts(texts, "input")
        vectors, counts = await service.embed(texts)
        data: list[dict[str, Any]] = []
        for i, vec in enumerate(vectors):
            emb: Any = (
                base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii")
                if body.encoding_format == "base64"
                else vec.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(counts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @app.get("/v1/models", tags=["openai"])
    async def openai_models() -> dict[str, Any]:
        """The one model this server has, in OpenAI's listing shape."""
        return {
            "object": "list",
            "data": [{"id": service.public_name, "object": "model", "created": 0, "owned_by": "shortlist"}],
        }

    # ------------------------------------------------------------------ similarity
    @app.post("/api/similarity", response_model=SimilarityResponse, responses=ErrorResponses, tags=["similarity"])
    async def similarity(body: SimilarityRequest) -> Response:
        """Cosine similarity of two texts, in [-1, 1]."""
        service.check_model(body.model)
        service.check_texts([body.text1], "text1")
        service.check_texts([body.text2], "text2")
        vectors, _ = await service.embed([body.text1, body.text2])
        score = float(np.clip(vectors[0] @ vectors[1], -1.0, 1.0))
        return JSONResponse({"similarity": score, "model": encoder.model_name})

    async def _pair_scores(pairs: Sequence[tuple[str, str]]) -> list[float]:
        unique = list(dict.fromkeys(t for pair in pairs for t in pair))
        vectors, _ = await service.embed(unique)
        row = {t: i for i, t in enumerate(unique)}
        left = vectors[[row[a] for a, _ in pairs]]
        right = vectors[[row[b] for _, b in pairs]]
        scores = np.clip(np.einsum("ij,ij->i", left, right), -1.0, 1.0)
        return [float(s) for s in scores]

    @app.post(
        "/api/similarity/batch", response_model=SimilarityBatchResponse, responses=ErrorResponses, tags=["similarity"]
    )
    async def similarity_batch(body: SimilarityBatchRequest) -> Response:
        """Cosine similarity of each pair (texts repeated across pairs are embedded once)."""
        service.check_model(body.model)
        if len(body.pairs) > limits.max_inputs:
            msg = f"pairs has {len(body.pairs):,} items; the limit is {limits.max_inputs:,}: send them in batches."
            raise ApiError(400, msg, param="pairs")
        for i, pair in enumerate(body.pairs):
            service.check_texts([pair.text1], f"pairs[{i}].text1")
            service.check_texts([pair.text2], f"pairs[{i}].text2")
        scores = await _pair_scores([(p.text1, p.text2) for p in body.pairs]) if body.pairs else []
        out: dict[str, Any] = {"similarities": scores, "model": encoder.model_name}
        if body.threshold is not None:
            out["matches"] = [s >= body.threshold for s in scores]
        return JSONResponse(out)

    @app.post(
        "/api/similarity/csv",
        response_class=Response,
        responses={**ErrorResponses, 200: {"content": {"text/csv": {}}, "description": "The scored rows."}},
        tags=["similarity"],
    )
    async def similarity_csv(
        file: UploadFile = File(..., description="CSV of two text columns; an optional header row."),  # noqa: B008
        threshold: float | None = Form(None, ge=-1.0, le=1.0, description="If given, adds a match column."),
        header: str = Form("auto", pattern="^(auto|yes|no)$", description="First row is a header: auto/yes/no."),
    ) -> Response:
        """Score every row of a two-column CSV file; answer the same rows with ``similarity`` (and ``match``)."""
        raw = await file.read()
        rows, head = _read_pairs_csv(raw, header, limits.max_csv_rows)
        for n, (a, b) in enumerate(rows, start=2 if head else 1):
            service.check_texts([a], f"line {n}, column 1")
            service.check_texts([b], f"line {n}, column 2")
        scores: list[float] = []
        step = max(1, limits.max_inputs // 2)
        for start in range(0, len(rows), step):
            scores.extend(await _pair_scores(rows[start : start + step]))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = list(head or ("text1", "text2")) + ["similarity"] + (["match"] if threshold is not None else [])
        writer.writerow(names)
        for (a, b), s in zip(rows, scores, strict=True):
            extra = [("yes" if s >= threshold else "no")] if threshold is not None else []
            writer.writerow([a, b, f"{s:.6f}", *extra])
        stem = Path(file.filename or "pairs.csv").stem or "pairs"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{safe}-scored.csv"'},
        )

    # ------------------------------------------------------------------ search
    @app.post("/api/search", response_model=SearchResponse, responses=ErrorResponses | {409: {}}, tags=["search"])
    async def search(body: SearchRequest) -> Response:
        """The shortlist of a collection's chunks for a query, with scores and figures."""
        if len(body.query) > limits.max_text_chars:
            msg = f"query has {len(body.query):,} characters; the limit is {limits.max_text_chars:,}."
            raise ApiError(400, msg, param="query")
        if not clean_text(body.query).strip():
            msg = "query is empty: ask a question (an empty query would match everything a little)."
            raise ApiError(400, msg, param="query")
        prefilter = await run_in_threadpool(service.prefilter, body.collection)
        from shortlist.cli import shortlist_dict

        def run() -> dict[str, Any]:
            result = prefilter.search(
                body.query,
                k=body.k,
                min_score=body.min_score,
                mode=body.mode,
                where=body.where,
                where_document=body.where_document,
                mmr=body.mmr,
                max_per_source=body.max_per_source,
                budget=body.budget,
            )
            return shortlist_dict(result)

        try:
            data = await run_in_threadpool(run)
        except (InputError, ConfigError) as exc:
            raise ApiError(400, str(exc)) from exc
        except StoreError as exc:
            if _is_chroma_argument_error(exc.__cause__):  # e.g. a where filter Chroma's own parser refuses
                raise ApiError(400, f"Chroma refused the request: {exc}") from exc
            raise ApiError(503, f"The collection could not be searched: {exc}") from exc
        except ShortlistError as exc:
            raise ApiError(400, str(exc)) from exc
        data["collection"] = prefilter.store.name
        return JSONResponse(data)

    # ------------------------------------------------------------------ health
    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> Response:
        """Model, backend, collections and the batcher's counters."""
        sizes = await run_in_threadpool(service.collection_sizes)
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "model": encoder.model_name,
                "model_loaded": encoder.is_loaded,
                "backend": encoder.backend_name,
                "device": encoder.device,
                "dimension": encoder.dimension,
                "db": str(path),
                "collection": collection,
                "collections": sizes,
                "batching": {"enabled": batcher.enabled, "max_batch": batcher.max_batch, **batcher.stats.as_dict()},
                "limits": asdict(limits),
            }
        )

    return app


def _is_chroma_argument_error(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    try:
        from chromadb.errors import InvalidArgumentError
    except ImportError:  # pragma: no cover - chromadb is a core dependency
        return False
    return isinstance(exc, InvalidArgumentError)


def _read_pairs_csv(raw: bytes, header: str, max_rows: int) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """Rows of a two-column CSV file and its header (``None`` if it has none); 400 on anything else."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = f"The CSV file is not UTF-8 (byte {exc.start}): save it as UTF-8 and upload again."
        raise ApiError(400, msg, param="file") from exc
    first_line = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first_line:  # a tab- or semicolon-separated export
        delimiter = "\t" if "\t" in first_line else (";" if ";" in first_line else ",")
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
    except csv.Error as exc:
        msg = f"The CSV file could not be read: {exc}."
        raise ApiError(400, msg, param="file") from exc
    if not rows:
        msg = "The CSV file has no rows: give two columns of texts, one pair per line."
        raise ApiError(400, msg, param="file")
    head: tuple[str, str] | None = None
    first = rows[0]
    is_header = header == "yes" or (
        header == "auto" and len(first) == 2 and all(c.strip().lower() in CSV_HEADER_NAMES for c in first)
    )
    if is_header:
        if len(first) != 2:
            msg = f"The CSV header has {len(first)} columns; it needs exactly two (text1, text2)."
            raise ApiError(400, msg, param="file")
        head = (first[0], first[1])
        rows = rows[1:]
    if len(rows) > max_rows:
        msg = f"The CSV file has {len(rows):,} rows; the limit is {max_rows:,}: split it."
        raise ApiError(400, msg, param="file")
    pairs: list[tuple[str, str]] = []
    for n, row in enumerate(rows, start=2 if head else 1):
        if len(row) != 2:
            msg = f"Line {n} of the CSV file has {len(row)} columns; every line needs exactly two texts."
            raise ApiError(400, msg, param="file")
        pairs.append((row[0], row[1]))
    return pairs, head
