"""Request and response bodies of ``shortlist serve`` (pydantic, so they are checked and documented in OpenAPI).

The search request builds on :class:`~shortlist.search.options.SearchOptions`: every option there is a field here
(an option is added in one place). The Ollama- and OpenAI-compatible bodies follow those APIs' field names; fields
shortlist does not use (``options``, ``keep_alive``, ``user``) are accepted and ignored so unmodified clients work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from shortlist.config import DEFAULT_MODE, SearchMode
from shortlist.search.options import OPTION_NAMES, SearchOptions

__all__ = [
    "EmbedRequest",
    "EmbedResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "HealthResponse",
    "OpenAIEmbedding",
    "OpenAIEmbeddingsRequest",
    "OpenAIEmbeddingsResponse",
    "OpenAIUsage",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "SearchStatsBody",
    "SimilarityBatchRequest",
    "SimilarityBatchResponse",
    "SimilarityPair",
    "SimilarityRequest",
    "SimilarityResponse",
]

_CONFIG = ConfigDict(allow_inf_nan=False)


class EmbedRequest(BaseModel):
    """Ollama ``POST /api/embed``."""

    model_config = _CONFIG
    model: str | None = Field(None, description="Model name, e.g. 'all-minilm' (default: the server's model).")
    input: str | list[str] = Field(..., description="One text or a list of texts.")
    truncate: bool | None = Field(
        None,
        description="false: a text over the model's window (254 word pieces) is an error (400). "
        "true or absent: long texts are embedded window by window and mean-pooled (nothing is dropped).",
    )
    dimensions: int | None = Field(None, description="Must be the model's dimension (384) if given.")
    options: dict[str, Any] | None = Field(None, description="Accepted and ignored.")
    keep_alive: float | str | None = Field(None, description="Accepted and ignored (the model stays loaded).")


class EmbedResponse(BaseModel):
    """Ollama ``/api/embed`` answer."""

    model: str
    embeddings: list[list[float]]
    total_duration: int = Field(..., description="Nanoseconds spent on the request.")
    load_duration: int = 0
    prompt_eval_count: int = Field(..., description="Word pieces embedded ([CLS]/[SEP] not counted).")


class EmbeddingsRequest(BaseModel):
    """Ollama's older ``POST /api/embeddings``."""

    model_config = _CONFIG
    model: str | None = None
    prompt: str = Field(..., description="The text to embed.")
    options: dict[str, Any] | None = None
    keep_alive: float | str | None = None


class EmbeddingsResponse(BaseModel):
    """Ollama ``/api/embeddings`` answer."""

    embedding: list[float]


class OpenAIEmbeddingsRequest(BaseModel):
    """OpenAI ``POST /v1/embeddings``."""

    model_config = _CONFIG
    model: str = Field(..., description="Model name, e.g. 'all-minilm'.")
    input: str | list[str] | list[int] | list[list[int]] = Field(
        ..., description="A text or a list of texts. Token-id arrays are refused (400): send the texts."
    )
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="'base64': little-endian float32 bytes, as the official client asks for."
    )
    dimensions: int | None = Field(None, description="Must be the model's dimension (384) if given.")
    user: str | None = Field(None, description="Accepted and ignored.")


class OpenAIEmbedding(BaseModel):
    """One vector of an OpenAI embeddings answer."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class OpenAIUsage(BaseModel):
    """Tokens read (word pieces of the model's tokenizer)."""

    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingsResponse(BaseModel):
    """OpenAI ``/v1/embeddings`` answer."""

    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class SimilarityRequest(BaseModel):
    """``POST /api/similarity``: the cosine similarity of two texts."""

    model_config = _CONFIG
    text1: str
    text2: str
    model: str | None = None


class SimilarityResponse(BaseModel):
    """Cosine similarity in [-1, 1]."""

    similarity: float
    model: str


class SimilarityPair(BaseModel):
    """Two texts to compare."""

    model_config = _CONFIG
    text1: str
    text2: str


class SimilarityBatchRequest(BaseModel):
    """``POST /api/similarity/batch``: many pairs at once."""

    model_config = _CONFIG
    pairs: list[SimilarityPair]
    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="If given, each pair also gets `match`.")
    model: str | None = None


class SimilarityBatchResponse(BaseModel):
    """One similarity per pair, in order (and ``matches`` when a threshold was given)."""

    similarities: list[float]
    model: str
    matches: list[bool] | None = None


class _SearchQuery(BaseModel):
    """The fields of ``POST /api/search`` that are not search options."""

    model_config = _CONFIG
    query: str = Field(..., description="The question.")

    def options(self) -> SearchOptions:
        """The request's search options (checked by :class:`~shortlist.search.options.SearchOptions`)."""
        return SearchOptions(**{name: getattr(self, name) for name in OPTION_NAMES})


_DEFAULTS = SearchOptions()
#: How the API shows each search option: its type, default, bounds and description. An option of
#: :class:`~shortlist.search.options.SearchOptions` missing here is served with its own type and default.
_SEARCH_FIELDS: dict[str, tuple[Any, Any]] = {
    "k": (int, Field(_DEFAULTS.k, ge=1, le=1000, description="Most hits to return.")),
    "min_score": (
        float | None,
        Field(None, ge=-1.0, le=1.0, description="Drop hits under this cosine similarity."),
    ),
    "min_relevance": (
        float | None,
        Field(
            None,
            ge=0.0,
            le=1.0,
            description="Drop hits under this relevance (0-1, calibrated on the collection, any language; try 0.5).",
        ),
    ),
    "where": (dict[str, Any] | None, Field(None, description='Chroma metadata filter, e.g. {"lang": "en"}.')),
    "where_document": (dict[str, Any] | None, Field(None, description='Text filter, e.g. {"$contains": "json"}.')),
    "mode": (
        SearchMode,
        Field(DEFAULT_MODE, description="hybrid (default: adaptive dense + BM25 fusion), dense or keyword."),
    ),
    "mmr": (bool, Field(False, description="Diversify the hits (maximal marginal relevance).")),
    "mmr_lambda": (
        float,
        Field(_DEFAULTS.mmr_lambda, ge=0.0, le=1.0, description="MMR trade-off: 1 pure relevance, 0 pure diversity."),
    ),
    "fetch_k": (
        int | None,
        Field(None, ge=1, le=10_000, description="Candidates drawn from each index (default: max(4k, 20) if needed)."),
    ),
    "max_per_source": (int | None, Field(None, ge=1, le=1000)),
    "budget": (int | None, Field(None, ge=1, description="Keep the best hits within this many tokens.")),
}


def _search_request_model() -> type[_SearchQuery]:
    """``SearchRequest``: the query, every field of :class:`SearchOptions` (in its order), the collection."""
    hints = get_type_hints(SearchOptions)
    fields: dict[str, Any] = {
        name: _SEARCH_FIELDS.get(name, (hints[name], Field(getattr(_DEFAULTS, name)))) for name in OPTION_NAMES
    }
    fields["collection"] = (str | None, Field(None, description="Collection to search (default: the server's)."))
    return create_model(
        "SearchRequest",
        __base__=_SearchQuery,
        __doc__="``POST /api/search``: the shortlist of a collection's chunks for a query.",
        __module__=__name__,
        **fields,
    )


if TYPE_CHECKING:

    class SearchRequest(_SearchQuery):
        """``POST /api/search`` as the type checker sees it (the fields that are not options)."""

        collection: str | None

else:
    SearchRequest = _search_request_model()


class SearchHit(BaseModel):
    """One chunk of the shortlist."""

    rank: int
    id: str
    score: float | None
    relevance: float | None = Field(None, description="How likely this hit is the right one (0-1), any language.")
    source: str
    text: str
    metadata: dict[str, Any]


class SearchStatsBody(BaseModel):
    """Figures of one search."""

    chunks_total: int
    candidates: int
    corpus_tokens: int
    kept_tokens: int
    saved_share: float
    timings_ms: dict[str, float]


class SearchResponse(BaseModel):
    """The shortlist (same shape as ``shortlist query --json``) and the collection searched."""

    query: str
    hits: list[SearchHit]
    stats: SearchStatsBody
    collection: str


class HealthResponse(BaseModel):
    """``GET /health``."""

    status: Literal["ok", "degraded"]
    version: str
    model: str
    model_loaded: bool
    backend: str
    device: str
    dimension: int
    db: str
    collection: str
    collections: dict[str, int]
    store_error: str | None = None
    batching: dict[str, Any]
    limits: dict[str, int]
