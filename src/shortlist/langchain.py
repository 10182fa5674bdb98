"""LangChain adapters: :class:`MiniLMEmbeddings` (``Embeddings``) and :class:`ShortlistRetriever` (``BaseRetriever``).

Thin by design: the embeddings call the shared :class:`~shortlist.encoder.Encoder`, the retriever calls
:meth:`Prefilter.search <shortlist.prefilter.Prefilter.search>` and turns each :class:`~shortlist.types.Hit` into a
``Document``. Nothing about retrieval lives here.

Needs the ``langchain`` extra: ``pip install 'shortlist[langchain]'``.

Example:
    ```python
    from shortlist import Prefilter
    from shortlist.langchain import MiniLMEmbeddings, ShortlistRetriever

    emb = MiniLMEmbeddings()
    print(len(emb.embed_query("Where is the cat?")))
    # 384

    pf = Prefilter.in_memory("pets")
    pf.add_documents(["Cats sleep most of the day.", "The stock market fell on Monday."])
    retriever = ShortlistRetriever.from_prefilter(pf, k=1)
    doc = retriever.invoke("How long do cats sleep?")[0]
    print(doc.page_content, doc.metadata["rank"], round(doc.metadata["score"], 2))
    # Cats sleep most of the day. 1 0.82
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shortlist._adapters import SEARCH_OPTIONS, merge_options, result_metadata
from shortlist.config import DEFAULT_K, DEFAULT_MODE, Backend
from shortlist.encoder import Encoder
from shortlist.errors import ConfigError, MissingDependencyError
from shortlist.prefilter import Prefilter, SearchMode
from shortlist.search.options import SearchOptions
from shortlist.types import Hit, Shortlist

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables.config import run_in_executor
    from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by tests/unit/test_adapters_imports.py
    _msg = (
        "shortlist.langchain needs langchain-core, which is not installed. "
        "Install it with `pip install 'shortlist[langchain]'`."
    )
    raise MissingDependencyError(_msg) from exc

from shortlist._langchain_vectorstore import ShortlistVectorStore

__all__ = ["MiniLMEmbeddings", "ShortlistRetriever", "ShortlistVectorStore", "hit_to_document"]

logger = logging.getLogger(__name__)

# Keys LangChain's ``invoke`` itself reads and leaves in its ``**kwargs``: not search options, ignored.
_INVOKE_KEYS = ("verbose",)


# ---------------------------------------------------------------------------------------------- embeddings
class MiniLMEmbeddings(BaseModel, Embeddings):
    """LangChain ``Embeddings`` over shortlist's shared all-MiniLM-L6-v2 :class:`~shortlist.encoder.Encoder`.

    Unlike ``HuggingFaceEmbeddings``, which builds its own ``SentenceTransformer`` per instance, every
    ``MiniLMEmbeddings`` (and every LlamaIndex ``MiniLMEmbedding``, pre-filter and CLI call) in a process uses
    :meth:`Encoder.shared() <shortlist.encoder.Encoder.shared>`: one copy of the weights, loaded on first use.

    Args:
        model_name: Model folder or id (alias ``model``). Default ``None``: ``SHORTLIST_MODEL``, else the packaged
            all-MiniLM-L6-v2 weights (offline).
        device: Torch device. Default ``None``: ``SHORTLIST_DEVICE``, else ``"cpu"``.
        backend: ``"torch"``, ``"onnx"`` or ``"onnx-int8"``. Default ``None``: ``SHORTLIST_BACKEND``, else ``"onnx"``
            on the CPU (``"torch"`` on other devices; see :func:`~shortlist.config.default_backend`).
        batch_size: Texts per forward pass in :meth:`embed_documents`. Default ``None``: the encoder's (32).
        encoder: An :class:`~shortlist.encoder.Encoder` to use instead of the shared one (then ``model_name``,
            ``device`` and ``backend`` must be left unset).

    Vectors are L2-normalised lists of 384 floats, so a dot product is the cosine similarity. Empty or
    white-space-only texts are refused with :class:`~shortlist.errors.InputError` (their vector would match
    everything a little); texts over the model's 256-token window are split and mean-pooled, never truncated.

    Example:
        ```python
        from shortlist.langchain import MiniLMEmbeddings

        emb = MiniLMEmbeddings()
        vectors = emb.embed_documents(["The cat sits on the mat.", "Stock markets fell today."])
        query = emb.embed_query("Where is the cat?")
        print(len(vectors), len(query), round(sum(a * b for a, b in zip(vectors[0], query)), 2))
        # 2 384 0.51
        ```
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)

    model_name: str | None = Field(default=None, alias="model")
    device: str | None = None
    backend: Backend | None = None
    batch_size: int | None = Field(default=None, gt=0)

    _encoder: Encoder = PrivateAttr()

    def __init__(self, *, encoder: Encoder | None = None, **data: Any) -> None:
        super().__init__(**data)
        if encoder is not None:
            if not isinstance(encoder, Encoder):
                msg = f"encoder must be a shortlist Encoder, got {type(encoder).__name__}."
                raise ConfigError(msg)
            given = [name for name in ("model_name", "device", "backend") if getattr(self, name) is not None]
            if given:
                msg = f"Give either encoder= or {', '.join(given)}, not both: the encoder already fixes them."
                raise ConfigError(msg)
            self._encoder = encoder
        else:
            self._encoder = Encoder.shared(self.model_name, self.device, self.backend)

    @property
    def encoder(self) -> Encoder:
        """The :class:`~shortlist.encoder.Encoder` this instance embeds with."""
        return self._encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents, in batches.

        Args:
            texts: The texts.

        Returns:
            One list of floats per text (L2-normalised).

        Raises:
            InputError: if a text is not a string or is empty; the message names its position.
        """
        return self._encoder.embed_documents(texts, batch_size=self.batch_size).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (cached: a repeated question costs nothing).

        Args:
            text: The query.

        Returns:
            The query's L2-normalised vector.

        Raises:
            InputError: if ``text`` is not a non-empty string.
        """
        return self._encoder.embed_query(text).tolist()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents in a worker thread, so the event loop keeps running. See :meth:`embed_documents`."""
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a query in a worker thread, so the event loop keeps running. See :meth:`embed_query`."""
        return await run_in_executor(None, self.embed_query, text)


# ---------------------------------------------------------------------------------------------- retriever
def hit_to_document(hit: Hit) -> Document:
    """Translate a :class:`~shortlist.types.Hit` into a LangChain ``Document``.

    The metadata is the hit's (including ``source`` and ``chunk``) plus ``id``, ``score`` (cosine similarity) and
    ``rank`` (1-based); a user key with one of those names is kept as ``original_<key>``. ``Document.id`` is the
    chunk id.
    """
    return Document(id=hit.id, page_content=hit.text, metadata=result_metadata(hit))


class ShortlistRetriever(BaseRetriever):
    """LangChain retriever over a :class:`~shortlist.prefilter.Prefilter`: the shortlist as ``Document`` objects.

    Every field but ``prefilter`` is an option of :meth:`Prefilter.search <shortlist.prefilter.Prefilter.search>`
    (same names, same defaults) and can be overridden per call: ``retriever.invoke(query, k=2, where={...})``.

    Args:
        prefilter: The pre-filter to search.
        k: Most documents to return (default 4).
        min_score: Drop hits whose cosine similarity is below this.
        min_relevance: Drop hits whose relevance (in [0, 1], calibrated on the collection) is below this.
        where: Chroma metadata filter, e.g. ``{"lang": "en"}``.
        where_document: Chroma document filter, e.g. ``{"$contains": "python"}``.
        mode: ``"hybrid"`` (default: adaptive fusion of both), ``"dense"`` or ``"keyword"``.
        mmr: Re-rank for diversity (maximal marginal relevance).
        mmr_lambda: MMR trade-off, 1.0 pure relevance (default 0.5).
        fetch_k: Candidates drawn before threshold, diversity and budget.
        max_per_source: Most hits from one document.
        budget: Most model tokens in the returned texts.

    Each ``Document`` has ``id`` = the chunk id, ``page_content`` = the chunk's text and ``metadata`` = the chunk's
    metadata (with ``source`` and ``chunk``) plus ``id``, ``score`` (cosine similarity) and ``rank``.

    Example:
        ```python
        from shortlist import Prefilter
        from shortlist.langchain import ShortlistRetriever

        pf = Prefilter.in_memory("pets")
        pf.add_documents(["Cats sleep most of the day.", "Dogs love long walks.", "Stocks fell on Monday."])
        retriever = ShortlistRetriever(prefilter=pf, k=2, min_score=0.2)
        print([d.page_content for d in retriever.invoke("How long do cats sleep?")])
        # ['Cats sleep most of the day.', 'Dogs love long walks.']
        print(len(retriever.invoke("pets", k=1)))
        # 1
        ```
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    prefilter: Prefilter
    k: int = Field(default=DEFAULT_K, gt=0)
    min_score: float | None = None
    min_relevance: float | None = Field(default=None, ge=0.0, le=1.0)
    where: dict[str, Any] | None = None
    where_document: dict[str, Any] | None = None
    mode: SearchMode = DEFAULT_MODE
    mmr: bool = False
    mmr_lambda: float = Field(default=0.5, ge=0.0, le=1.0)
    fetch_k: int | None = Field(default=None, gt=0)
    max_per_source: int | None = Field(default=None, gt=0)
    budget: int | None = Field(default=None, ge=0)

    @classmethod
    def from_prefilter(cls, prefilter: Prefilter, k: int = DEFAULT_K, **options: Any) -> ShortlistRetriever:
        """A retriever over ``prefilter``; ``options`` are the other search options (see the class).

        Args:
            prefilter: The pre-filter.
            k: Most documents per query (default 4).
            **options: ``min_score``, ``min_relevance``, ``where``, ``where_document``, ``mode``, ``mmr``,
                ``mmr_lambda``, ``fetch_k``, ``max_per_source``, ``budget``, and BaseRetriever's
                ``tags``/``metadata``.

        Returns:
            The retriever.
        """
        return cls(prefilter=prefilter, k=k, **options)

    def search_options(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The keyword arguments this retriever passes to :meth:`Prefilter.search`, with per-call ``overrides``.

        Raises:
            ConfigError: on an override that is not a search option (the message lists them).
        """
        defaults = {name: getattr(self, name) for name in SEARCH_OPTIONS}
        return merge_options(defaults, overrides, owner=type(self).__name__, ignore=_INVOKE_KEYS)

    def shortlist(self, query: str, **overrides: Any) -> Shortlist:
        """The :class:`~shortlist.types.Shortlist` (hits and figures) for ``query``, with this retriever's options."""
        return self.prefilter.search_with(query, SearchOptions(**self.search_options(overrides)))

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [hit_to_document(hit) for hit in self.shortlist(query, **kwargs)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        asearch = getattr(self.prefilter, "asearch", None)
        options = self.search_options(kwargs)
        if asearch is not None:
            result: Shortlist = await asearch(query, **options)
        else:  # search in a worker thread: the event loop keeps running while the query is embedded and looked up
            result = await run_in_executor(None, self.prefilter.search_with, query, SearchOptions(**options))
        return [hit_to_document(hit) for hit in result]
