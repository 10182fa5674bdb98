"""LlamaIndex adapters: :class:`MiniLMEmbedding` (``BaseEmbedding``), :class:`ShortlistRetriever` (``BaseRetriever``).

Thin by design: the embedding calls the shared :class:`~shortlist.encoder.Encoder`, the retriever calls
:meth:`Prefilter.search <shortlist.prefilter.Prefilter.search>` and turns each :class:`~shortlist.types.Hit` into a
``NodeWithScore``. Nothing about retrieval lives here.

Needs the ``llama-index`` extra: ``pip install 'shortlist[llama-index]'``.

Example:
    ```python
    from llama_index.core import Document, Settings, VectorStoreIndex

    from shortlist.llama_index import MiniLMEmbedding

    Settings.embed_model = MiniLMEmbedding()
    index = VectorStoreIndex.from_documents([Document(text="Cats sleep most of the day."),
                                             Document(text="The stock market fell on Monday.")])
    node = index.as_retriever(similarity_top_k=1).retrieve("How long do cats sleep?")[0]
    print(node.get_content(), round(node.score, 2))
    # Cats sleep most of the day. 0.82
    ```
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shortlist._adapters import SEARCH_OPTIONS, merge_options, result_metadata
from shortlist.config import DEFAULT_K, DEFAULT_MODE, Backend
from shortlist.encoder import Encoder
from shortlist.errors import ConfigError, MissingDependencyError
from shortlist.ingest.chunking import heads_with_title
from shortlist.prefilter import Prefilter, SearchMode
from shortlist.search.options import SearchOptions
from shortlist.store import KEY_TITLE
from shortlist.types import Hit, Shortlist

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by tests/unit/test_adapters_imports.py
    _msg = (
        "shortlist.llama_index needs llama-index-core, which is not installed. "
        "Install it with `pip install 'shortlist[llama-index]'`."
    )
    raise MissingDependencyError(_msg) from exc

from shortlist._llama_index_vectorstore import ShortlistVectorStore

__all__ = ["MiniLMEmbedding", "ShortlistRetriever", "ShortlistVectorStore", "hit_to_node"]

logger = logging.getLogger(__name__)

#: Metadata keys kept out of the text the LLM reads (and of any re-embedding): figures, not content.
HIDDEN_KEYS = ("id", "score", "rank", "relevance", "chunk")


# ---------------------------------------------------------------------------------------------- embedding
class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding`` over shortlist's shared all-MiniLM-L6-v2 :class:`~shortlist.encoder.Encoder`.

    Unlike ``HuggingFaceEmbedding``, which loads its own ``SentenceTransformer`` per instance, every
    ``MiniLMEmbedding`` (and every LangChain ``MiniLMEmbeddings``, pre-filter and CLI call) in a process uses
    :meth:`Encoder.shared() <shortlist.encoder.Encoder.shared>`: one copy of the weights, loaded on first use.

    Args:
        model_name: Model folder or id. Default ``None``: ``SHORTLIST_MODEL``, else the packaged all-MiniLM-L6-v2
            weights (offline). After construction, :attr:`model_name` holds the encoder's model name.
        device: Torch device. Default ``None``: ``SHORTLIST_DEVICE``, else ``"cpu"``.
        backend: ``"torch"``, ``"onnx"`` or ``"onnx-int8"``. Default ``None``: ``SHORTLIST_BACKEND``, else ``"onnx"``
            on the CPU (``"torch"`` on other devices; see :func:`~shortlist.config.default_backend`).
        encoder: An :class:`~shortlist.encoder.Encoder` to use instead of the shared one (then ``model_name``,
            ``device`` and ``backend`` must be left unset).
        embed_batch_size: Texts per forward pass (default: the encoder's, 32). LlamaIndex groups texts into
            batches of this size and each batch is one call to the encoder.
        **kwargs: Other ``BaseEmbedding`` fields (``callback_manager``, ``num_workers``, ``embeddings_cache``...).

    Vectors are L2-normalised lists of 384 floats (cosine similarity = dot product). Empty texts are refused with
    :class:`~shortlist.errors.InputError`; texts over the model's window are split and mean-pooled, never truncated.
    The async methods run the encoder in a worker thread, so the event loop keeps running.

    Example:
        ```python
        from shortlist.llama_index import MiniLMEmbedding

        emb = MiniLMEmbedding()
        vectors = emb.get_text_embedding_batch(["The cat sits on the mat.", "Stock markets fell today."])
        print(len(vectors), len(emb.get_query_embedding("Where is the cat?")), emb.model_name)
        # 2 384 sentence-transformers/all-MiniLM-L6-v2
        ```
    """

    _encoder: Encoder = PrivateAttr()

    def __init__(
        self,
        model_name: str | None = None,
        *,
        device: str | None = None,
        backend: Backend | None = None,
        encoder: Encoder | None = None,
        embed_batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        if encoder is not None:
            if not isinstance(encoder, Encoder):
                msg = f"encoder must be a shortlist Encoder, got {type(encoder).__name__}."
                raise ConfigError(msg)
            given = [n for n, v in (("model_name", model_name), ("device", device), ("backend", backend)) if v]
            if given:
                msg = f"Give either encoder= or {', '.join(given)}, not both: the encoder already fixes them."
                raise ConfigError(msg)
        else:
            encoder = Encoder.shared(model_name, device, backend)
        super().__init__(
            model_name=encoder.model_name,
            embed_batch_size=encoder.batch_size if embed_batch_size is None else embed_batch_size,
            **kwargs,
        )
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records for this class."""
        return "MiniLMEmbedding"

    @property
    def encoder(self) -> Encoder:
        """The :class:`~shortlist.encoder.Encoder` this instance embeds with."""
        return self._encoder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.embed_query(query).tolist()  # type: ignore[no-any-return]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        # One call per LlamaIndex batch; the encoder runs it as forward passes of embed_batch_size texts.
        return self._encoder.embed_documents(texts, batch_size=self.embed_batch_size).tolist()  # type: ignore[no-any-return]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


# ---------------------------------------------------------------------------------------------- retriever
def hit_to_node(hit: Hit) -> NodeWithScore:
    """Translate a :class:`~shortlist.types.Hit` into a LlamaIndex ``NodeWithScore``.

    The node is a ``TextNode`` with ``id_`` = the chunk id, the chunk's text, and the same metadata as the LangChain
    retriever's documents: the chunk's (with ``source`` and ``chunk``) plus ``id``, ``score`` and ``rank``.
    ``id``, ``score``, ``rank`` and ``chunk`` are kept out of the text the LLM reads, and so is ``title`` when the
    chunk's text already starts with it (the pre-filter heads every chunk with its document's title); ``source`` is
    also the node's ``SOURCE`` relationship (its ``ref_doc_id``). ``NodeWithScore.score`` is the cosine similarity.
    """
    meta = result_metadata(hit)
    hidden = [k for k in HIDDEN_KEYS if k in meta]
    if heads_with_title(hit.text, meta.get(KEY_TITLE)):
        hidden.append(KEY_TITLE)
    source = meta.get("source")
    relationships = {}
    if isinstance(source, str) and source:
        relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=source)
    node = TextNode(
        id_=hit.id,
        text=hit.text,
        metadata=meta,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=list(hidden),
        relationships=relationships,
    )
    return NodeWithScore(node=node, score=float(hit.score))


class ShortlistRetriever(BaseRetriever):
    """LlamaIndex retriever over a :class:`~shortlist.prefilter.Prefilter`: the shortlist as ``NodeWithScore``.

    Args:
        prefilter: The pre-filter to search.
        similarity_top_k: Most nodes to return (default 4): the pre-filter's ``k``, named as in LlamaIndex's own
            retrievers.
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
        callback_manager: LlamaIndex callback manager.
        verbose: LlamaIndex's verbose flag.

    Options are checked by the pre-filter when the retriever runs (a bad one raises
    :class:`~shortlist.errors.ConfigError` naming it). Scores and metadata equal the LangChain retriever's.

    Example:
        ```python
        from llama_index.core.llms import MockLLM
        from llama_index.core.query_engine import RetrieverQueryEngine

        from shortlist import Prefilter
        from shortlist.llama_index import ShortlistRetriever

        pf = Prefilter.in_memory("pets")
        pf.add_documents(["Cats sleep most of the day.", "Dogs love long walks.", "Stocks fell on Monday."])
        retriever = ShortlistRetriever(pf, similarity_top_k=1)
        engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
        response = engine.query("How long do cats sleep?")
        print([n.get_content() for n in response.source_nodes])
        # ['Cats sleep most of the day.']
        ```
    """

    def __init__(
        self,
        prefilter: Prefilter,
        *,
        similarity_top_k: int = DEFAULT_K,
        min_score: float | None = None,
        min_relevance: float | None = None,
        where: dict[str, Any] | None = None,
        where_document: dict[str, Any] | None = None,
        mode: SearchMode = DEFAULT_MODE,
        mmr: bool = False,
        mmr_lambda: float = 0.5,
        fetch_k: int | None = None,
        max_per_source: int | None = None,
        budget: int | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(prefilter, Prefilter):
            msg = f"prefilter must be a shortlist Prefilter, got {type(prefilter).__name__}."
            raise ConfigError(msg)
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.prefilter = prefilter
        self.similarity_top_k = similarity_top_k
        self.min_score = min_score
        self.min_relevance = min_relevance
        self.where = where
        self.where_document = where_document
        self.mode: SearchMode = mode
        self.mmr = mmr
        self.mmr_lambda = mmr_lambda
        self.fetch_k = fetch_k
        self.max_per_source = max_per_source
        self.budget = budget

    @classmethod
    def from_prefilter(
        cls, prefilter: Prefilter, similarity_top_k: int = DEFAULT_K, **options: Any
    ) -> ShortlistRetriever:
        """A retriever over ``prefilter``; ``options`` are the other search options (see the class).

        Args:
            prefilter: The pre-filter.
            similarity_top_k: Most nodes per query (default 4).
            **options: ``min_score``, ``min_relevance``, ``where``, ``where_document``, ``mode``, ``mmr``,
                ``mmr_lambda``, ``fetch_k``, ``max_per_source``, ``budget``, ``callback_manager``, ``verbose``.

        Returns:
            The retriever.
        """
        return cls(prefilter, similarity_top_k=similarity_top_k, **options)

    def search_options(self, **overrides: Any) -> dict[str, Any]:
        """The keyword arguments this retriever passes to :meth:`Prefilter.search`, with ``overrides``.

        Raises:
            ConfigError: on an override that is not a search option.
        """
        defaults = {name: getattr(self, name) for name in SEARCH_OPTIONS if name != "k"}
        defaults["k"] = self.similarity_top_k
        return merge_options(defaults, overrides, owner=type(self).__name__, aliases={"similarity_top_k": "k"})

    def shortlist(self, query: str, **overrides: Any) -> Shortlist:
        """The :class:`~shortlist.types.Shortlist` (hits and figures) for ``query``, with this retriever's options."""
        return self.prefilter.search_with(query, SearchOptions(**self.search_options(**overrides)))

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [hit_to_node(hit) for hit in self.shortlist(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        asearch = getattr(self.prefilter, "asearch", None)
        options = self.search_options()
        if asearch is not None:
            result: Shortlist = await asearch(query_bundle.query_str, **options)
        else:  # search in a worker thread: the event loop keeps running while the query is embedded and looked up
            result = await asyncio.to_thread(
                self.prefilter.search_with, query_bundle.query_str, SearchOptions(**options)
            )
        return [hit_to_node(hit) for hit in result]
