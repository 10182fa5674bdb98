"""Embeddings in Ollama's shape (``/api/embed``, ``/api/embeddings``, ``/api/tags``, ``/api/version``) and in
OpenAI's (``/v1/embeddings``, ``/v1/models``), so unmodified clients of either work."""  # noqa: D205, D209

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shortlist import __version__
from shortlist.server.errors import ApiError, ErrorResponses
from shortlist.server.models import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    OpenAIEmbeddingsRequest,
    OpenAIEmbeddingsResponse,
)
from shortlist.server.service import OLLAMA_NAME, ServiceDep

__all__ = ["router"]

#: ``JSONResponse`` set (not left to FastAPI's default): the answers, validated against ``response_model``, are
#: written by ``json.dumps`` as before, so clients get the same bytes (pydantic's own writer spells 1e-05 as 1e-5).
router = APIRouter(default_response_class=JSONResponse)


def _as_list(value: str | list[Any]) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


# ---------------------------------------------------------------------------------------------- Ollama
@router.post("/api/embed", response_model=EmbedResponse, responses=ErrorResponses, tags=["ollama"])
async def ollama_embed(body: EmbedRequest, service: ServiceDep) -> dict[str, Any]:
    """Embed one text or a list (Ollama's current endpoint)."""
    started = time.perf_counter_ns()
    service.check_model(body.model)
    service.check_dimensions(body.dimensions)
    texts = _as_list(body.input)
    service.check_texts(texts, "input", strict_window=body.truncate is False)
    vectors, counts = await service.embed(texts)
    return {
        "model": body.model or OLLAMA_NAME,
        "embeddings": vectors.tolist(),
        "total_duration": time.perf_counter_ns() - started,
        "load_duration": 0,
        "prompt_eval_count": sum(counts),
    }


@router.post("/api/embeddings", response_model=EmbeddingsResponse, responses=ErrorResponses, tags=["ollama"])
async def ollama_embeddings(body: EmbeddingsRequest, service: ServiceDep) -> dict[str, Any]:
    """Embed one text (Ollama's older endpoint)."""
    service.check_model(body.model)
    service.check_texts([body.prompt], "prompt")
    vectors, _ = await service.embed([body.prompt])
    return {"embedding": vectors[0].tolist()}


@router.get("/api/tags", tags=["ollama"])
async def ollama_tags(service: ServiceDep) -> dict[str, Any]:
    """The one model this server has, in Ollama's listing shape."""
    encoder = service.encoder
    source = encoder.source.path
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) if source and source.is_dir() else 0
    name = OLLAMA_NAME if service.public_name == "all-minilm" else encoder.model_name
    return {
        "models": [
            {
                "name": name,
                "model": name,
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


@router.get("/api/version", tags=["ollama"])
async def ollama_version() -> dict[str, str]:
    """The server's version (shortlist's)."""
    return {"version": __version__}


# ---------------------------------------------------------------------------------------------- OpenAI
@router.post("/v1/embeddings", response_model=OpenAIEmbeddingsResponse, responses=ErrorResponses, tags=["openai"])
async def openai_embeddings(body: OpenAIEmbeddingsRequest, service: ServiceDep) -> dict[str, Any]:
    """Embed one text or a list (OpenAI's embeddings endpoint; ``encoding_format`` float or base64)."""
    service.check_model(body.model)
    service.check_dimensions(body.dimensions)
    texts = _as_list(body.input)
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
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


@router.get("/v1/models", tags=["openai"])
async def openai_models(service: ServiceDep) -> dict[str, Any]:
    """The one model this server has, in OpenAI's listing shape."""
    return {
        "object": "list",
        "data": [{"id": service.public_name, "object": "model", "created": 0, "owned_by": "shortlist"}],
    }
