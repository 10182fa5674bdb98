"""Cosine similarity: of two texts, of many pairs, of every row of an uploaded CSV file."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response

from shortlist.server.csv_pairs import read_pairs_csv, scored_csv, scored_filename
from shortlist.server.errors import ApiError, ErrorResponses
from shortlist.server.models import (
    SimilarityBatchRequest,
    SimilarityBatchResponse,
    SimilarityRequest,
    SimilarityResponse,
)
from shortlist.server.service import ServiceDep

__all__ = ["router"]

#: ``JSONResponse`` set (not left to FastAPI's default): the answers, validated against ``response_model``, are
#: written by ``json.dumps`` as before, so clients get the same bytes (pydantic's own writer spells 1e-05 as 1e-5).
router = APIRouter(default_response_class=JSONResponse)


@router.post("/api/similarity", response_model=SimilarityResponse, responses=ErrorResponses, tags=["similarity"])
async def similarity(body: SimilarityRequest, service: ServiceDep) -> dict[str, Any]:
    """Cosine similarity of two texts, in [-1, 1]."""
    service.check_model(body.model)
    service.check_texts([body.text1], "text1")
    service.check_texts([body.text2], "text2")
    vectors, _ = await service.embed([body.text1, body.text2])
    score = float(np.clip(vectors[0] @ vectors[1], -1.0, 1.0))
    return {"similarity": score, "model": service.encoder.model_name}


@router.post(
    "/api/similarity/batch",
    response_model=SimilarityBatchResponse,
    response_model_exclude_none=True,
    responses=ErrorResponses,
    tags=["similarity"],
)
async def similarity_batch(body: SimilarityBatchRequest, service: ServiceDep) -> dict[str, Any]:
    """Cosine similarity of each pair (texts repeated across pairs are embedded once)."""
    service.check_model(body.model)
    limit = service.limits.max_inputs
    if len(body.pairs) > limit:
        msg = f"pairs has {len(body.pairs):,} items; the limit is {limit:,}: send them in batches."
        raise ApiError(400, msg, param="pairs")
    for i, pair in enumerate(body.pairs):
        service.check_texts([pair.text1], f"pairs[{i}].text1")
        service.check_texts([pair.text2], f"pairs[{i}].text2")
    scores = await service.pair_scores([(p.text1, p.text2) for p in body.pairs]) if body.pairs else []
    out: dict[str, Any] = {"similarities": scores, "model": service.encoder.model_name}
    if body.threshold is not None:
        out["matches"] = [s >= body.threshold for s in scores]
    return out


@router.post(
    "/api/similarity/csv",
    response_class=Response,
    responses={**ErrorResponses, 200: {"content": {"text/csv": {}}, "description": "The scored rows."}},
    tags=["similarity"],
)
async def similarity_csv(
    service: ServiceDep,
    file: UploadFile = File(..., description="CSV of two text columns; an optional header row."),  # noqa: B008
    threshold: float | None = Form(None, ge=-1.0, le=1.0, description="If given, adds a match column."),
    header: str = Form("auto", pattern="^(auto|yes|no)$", description="First row is a header: auto/yes/no."),
) -> Response:
    """Score every row of a two-column CSV file; answer the same rows with ``similarity`` (and ``match``)."""
    limits = service.limits
    rows, head = read_pairs_csv(await file.read(), header, limits.max_csv_rows)
    for n, (a, b) in enumerate(rows, start=2 if head else 1):
        service.check_texts([a], f"line {n}, column 1")
        service.check_texts([b], f"line {n}, column 2")
    scores: list[float] = []
    step = max(1, limits.max_inputs // 2)
    for start in range(0, len(rows), step):
        scores.extend(await service.pair_scores(rows[start : start + step]))
    return Response(
        scored_csv(rows, scores, head, threshold),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{scored_filename(file.filename)}"'},
    )
