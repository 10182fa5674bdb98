"""The web page at ``/`` and ``GET /health`` (model, backend, collections, the batcher's counters)."""

from __future__ import annotations

import functools
from dataclasses import asdict
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from shortlist import __version__
from shortlist.config import ChromaServer
from shortlist.errors import StoreError
from shortlist.server.models import HealthResponse
from shortlist.server.service import ServiceDep

__all__ = ["page", "router"]

#: ``JSONResponse`` set (not left to FastAPI's default): the answers, validated against ``response_model``, are
#: written by ``json.dumps`` as before, so clients get the same bytes (pydantic's own writer spells 1e-05 as 1e-5).
router = APIRouter(default_response_class=JSONResponse)


@functools.cache
def page() -> str:
    """The web page (``static/index.html``), read once."""
    return resources.files("shortlist.server").joinpath("static/index.html").read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
async def index() -> HTMLResponse:
    """The web page: embed, compare and search from a browser."""
    return HTMLResponse(page())


@router.get("/health", response_model=HealthResponse, tags=["service"])
async def health(service: ServiceDep) -> dict[str, Any]:
    """Model, backend, collections and the batcher's counters.

    ``status`` is ``"degraded"`` (still 200: embeddings and similarity work) when the Chroma database cannot be
    read, a Chroma server that is down for example; ``store_error`` then says why, and searches answer 503.
    """
    store_error: str | None = None
    try:
        sizes = await run_in_threadpool(service.collection_sizes)
    except StoreError as exc:
        sizes, store_error = {}, service.db.explain(exc) if isinstance(service.db, ChromaServer) else str(exc)
    encoder = service.encoder
    batcher = service.batcher
    return {
        "status": "ok" if store_error is None else "degraded",
        "version": __version__,
        "model": encoder.model_name,
        "model_loaded": encoder.is_loaded,
        "backend": encoder.backend_name,
        "device": encoder.device,
        "dimension": encoder.dimension,
        "db": str(service.db),
        "collection": service.collection,
        "collections": sizes,
        "store_error": store_error,
        "batching": {"enabled": batcher.enabled, "max_batch": batcher.max_batch, **batcher.stats.as_dict()},
        "limits": asdict(service.limits),
    }
