"""The FastAPI application behind ``shortlist serve``: :func:`create_app` builds the shared state and includes the
routes.

One encoder serves every route, concurrent embedding requests share encoder batches
(:class:`~shortlist.batching.EmbeddingBatcher`), and every input is bounded (body size, number of texts,
characters per text), each limit answered with a 4xx that says what to change.

Where the parts are: the state the routes share and the request :class:`Limits` in :mod:`shortlist.server.service`;
the routes, one module per area, in :mod:`shortlist.server.routes`; the API-key check in :mod:`shortlist.server.auth`
and the middleware that applies it (and bounds the body) in :mod:`shortlist.server.guard`; errors, the one mapping of
shortlist's errors to HTTP statuses and their answers in the calling API's shape in :mod:`shortlist.server.errors`;
the CSV files of ``/api/similarity/csv`` in :mod:`shortlist.server.csv_pairs`.
"""  # noqa: D205

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from shortlist import __version__
from shortlist.batching import EmbeddingBatcher
from shortlist.config import DEFAULT_COLLECTION, ChromaServer, resolve_chroma_location
from shortlist.errors import ConfigError
from shortlist.server.auth import ENV_API_KEY, PUBLIC_PATHS, resolve_api_key
from shortlist.server.docs import install_docs
from shortlist.server.errors import ApiError, ErrorResponses, error_body, install_error_handlers, status_of
from shortlist.server.guard import FORM_PATHS, GuardMiddleware
from shortlist.server.routes import ROUTERS
from shortlist.server.service import MINILM_ALIASES, OLLAMA_NAME, Limits, Service, warm

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.prefilter import Prefilter

__all__ = [
    "ENV_API_KEY",
    "FORM_PATHS",
    "MINILM_ALIASES",
    "OLLAMA_NAME",
    "PUBLIC_PATHS",
    "ApiError",
    "ErrorResponses",
    "Limits",
    "create_app",
    "error_body",
    "status_of",
]

logger = logging.getLogger(__name__)


def create_app(
    *,
    encoder: Encoder | None = None,
    db: str | os.PathLike[str] | None = None,
    chroma: str | ChromaServer | None = None,
    collection: str = DEFAULT_COLLECTION,
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
        db: Folder of the embedded Chroma database searched by ``/api/search``. The server never creates a
            collection.
        chroma: A Chroma server (``chroma run``) to search instead of a folder: ``"http://host:port"`` or a
            :class:`~shortlist.config.ChromaServer`. Several ``shortlist serve`` processes can share one. With
            neither ``db`` nor ``chroma``: the server of ``SHORTLIST_CHROMA_URL`` if set, else
            ``SHORTLIST_CHROMA_PATH``, else ``<SHORTLIST_HOME>/chroma``. While the server is down, searches answer
            503 (and ``/health`` says ``degraded``); they recover by themselves when it is back.
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
        ConfigError: on bad limits or batch settings, both ``db`` and ``chroma``, or a bad URL.

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
    batcher = EmbeddingBatcher(  # a ConfigError on bad batch settings
        encoder, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=limits.max_queue, enabled=batching
    )
    if db is not None and chroma is not None:
        msg = "Give create_app one of 'db' (an embedded folder) or 'chroma' (a Chroma server), not both."
        raise ConfigError(msg)
    if isinstance(chroma, ChromaServer):
        location: Path | ChromaServer = chroma
    else:
        location = resolve_chroma_location(db, url=chroma)
    service = Service(encoder, batcher, limits, location, collection, prefilter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(encoder.load)
        logger.info("shortlist serve: %s loaded (%s)", encoder.model_name, encoder.backend_name)
        await run_in_threadpool(warm, service)
        yield
        await batcher.aclose()
        await run_in_threadpool(service.close)  # gives back an embedded folder (one process per folder)

    app = FastAPI(
        title="shortlist serve",
        version=__version__,
        summary="Embeddings (Ollama- and OpenAI-compatible), similarity and a retrieval pre-filter on "
        "all-MiniLM-L6-v2.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.batcher = batcher
    app.add_middleware(GuardMiddleware, api_key=resolve_api_key(api_key), max_body_bytes=limits.max_body_bytes)
    install_error_handlers(app)
    install_docs(app)  # /docs and /redoc with their assets served here, not from a CDN
    for router in ROUTERS:
        app.include_router(router)
    return app
