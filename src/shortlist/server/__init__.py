"""``shortlist serve``: an embedding, similarity and pre-filter HTTP service on the shared encoder.

Needs the ``server`` extra (``pip install 'shortlist[server]'``: FastAPI, uvicorn, python-multipart).

Routes: Ollama-compatible ``POST /api/embed`` and ``POST /api/embeddings``, ``GET /api/tags``, ``GET /api/version``;
OpenAI-compatible ``POST /v1/embeddings`` and ``GET /v1/models``; ``POST /api/similarity`` (and ``/batch``,
``/csv``); ``POST /api/search`` over a collection; ``GET /health``; the OpenAPI document at ``/openapi.json``
(``/docs`` to browse it); a web page at ``/``.

Example:
    ```python
    from shortlist.server import create_app, run

    app = create_app()          # FastAPI app, for uvicorn or a test client
    run(port=11434)             # or: shortlist serve --port 11434
    ```
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import TYPE_CHECKING, Any

from shortlist.config import DEFAULT_COLLECTION
from shortlist.errors import MissingDependencyError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shortlist.config import ChromaServer
    from shortlist.encoder import Encoder
    from shortlist.server.app import Limits

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "run"]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Ollama's port, so clients configured for Ollama find this server unchanged.
DEFAULT_PORT = 11434


def _require_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

        try:
            import python_multipart  # noqa: F401
        except ImportError:  # python-multipart before 0.0.13 only has the old name
            import multipart  # noqa: F401
    except ImportError as exc:
        msg = f"`shortlist serve` needs the server extra: pip install 'shortlist[server]' ({exc.name} is missing)."
        raise MissingDependencyError(msg) from exc


def create_app(**kwargs: Any) -> FastAPI:
    """Build the FastAPI application; see :func:`shortlist.server.app.create_app` for the arguments.

    Raises:
        MissingDependencyError: if FastAPI, uvicorn or python-multipart is not installed.
    """
    _require_server_extra()
    from shortlist.server.app import create_app as _create_app

    return _create_app(**kwargs)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    encoder: Encoder | None = None,
    db: str | os.PathLike[str] | None = None,
    chroma: str | ChromaServer | None = None,
    collection: str = DEFAULT_COLLECTION,
    limits: Limits | None = None,
    batching: bool = True,
    max_batch: int = 64,
    log_level: str = "info",
) -> None:
    """Serve the application with uvicorn until interrupted (Ctrl-C).

    Args:
        host: Interface to bind (default ``127.0.0.1``: this machine only). Binding another interface without
            ``SHORTLIST_API_KEY`` logs a warning.
        port: TCP port (default 11434, Ollama's).
        encoder: The encoder (default: the shared one).
        db: Embedded Chroma folder for ``/api/search``.
        chroma: A Chroma server instead (``http://host:port`` or a :class:`~shortlist.config.ChromaServer`).
        collection: Default collection of ``/api/search``.
        limits: Request bounds.
        batching: Combine concurrent requests into encoder batches (default ``True``).
        max_batch: Most texts per encoder call.
        log_level: uvicorn's log level.

    Raises:
        MissingDependencyError: without the server extra.
    """
    _require_server_extra()
    import uvicorn

    from shortlist.server.app import ENV_API_KEY
    from shortlist.server.app import create_app as _create_app

    if not _is_loopback(host) and not os.environ.get(ENV_API_KEY, "").strip():
        logger.warning(
            "Serving on %s without an API key: anyone who can reach this port can use it. Set %s.", host, ENV_API_KEY
        )
    app = _create_app(
        encoder=encoder,
        db=db,
        chroma=chroma,
        collection=collection,
        limits=limits,
        batching=batching,
        max_batch=max_batch,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, limit_concurrency=2048, timeout_keep_alive=30)
