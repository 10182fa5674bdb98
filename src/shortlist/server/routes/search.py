"""``POST /api/search``: the shortlist of a collection's chunks for a query, with scores and figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shortlist.server.errors import ApiError, ErrorResponses
from shortlist.server.models import SearchRequest, SearchResponse
from shortlist.server.service import ServiceDep
from shortlist.text import clean_text

__all__ = ["router"]

#: ``JSONResponse`` set (not left to FastAPI's default): the answers, validated against ``response_model``, are
#: written by ``json.dumps`` as before, so clients get the same bytes (pydantic's own writer spells 1e-05 as 1e-5).
router = APIRouter(default_response_class=JSONResponse)


@router.post("/api/search", response_model=SearchResponse, responses=ErrorResponses | {409: {}}, tags=["search"])
async def search(body: SearchRequest, service: ServiceDep) -> dict[str, Any]:
    """The shortlist of a collection's chunks for a query, with scores and figures."""
    limit = service.limits.max_text_chars
    if len(body.query) > limit:
        msg = f"query has {len(body.query):,} characters; the limit is {limit:,}."
        raise ApiError(400, msg, param="query")
    if not clean_text(body.query).strip():
        msg = "query is empty: ask a question (an empty query would match everything a little)."
        raise ApiError(400, msg, param="query")
    prefilter = await run_in_threadpool(service.prefilter, body.collection)
    result = await run_in_threadpool(prefilter.search_with, body.query, body.options())
    return {**result.to_dict(), "collection": prefilter.store.name}
