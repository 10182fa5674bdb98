"""LlamaIndex vector store over a pre-filter's Chroma collection: :class:`ShortlistVectorStore`.

Re-exported as :class:`shortlist.llama_index.ShortlistVectorStore`. It stores text (``stores_text=True``), so
``VectorStoreIndex.from_vector_store(store, embed_model=MiniLMEmbedding())`` needs no docstore: ``index.insert``,
``index.delete_ref_doc``, ``MetadataFilters`` and ``index.as_retriever(vector_store_query_mode=...)`` run on the
collection itself, which the pre-filter, the CLI and the LangChain adapters see too.

Query modes: ``"default"`` is a dense search with the query vector LlamaIndex embedded; ``"hybrid"`` the pre-filter's
hybrid search (dense + BM25, adaptive fusion); ``"text_search"`` / ``"sparse"`` BM25 only; ``"mmr"`` maximal marginal
relevance (``vector_store_kwargs={"mmr_threshold": 0.5}`` is its lambda). ``vector_store_kwargs`` may also carry
:meth:`Prefilter.search <shortlist.prefilter.Prefilter.search>` options (``min_score``, ``budget``,
``max_per_source``, ``where_document``, ``fetch_k``). Scores are cosine similarities.

A node is one row, its text unchanged, its id the node's, its metadata the node's; its ``ref_doc_id`` is the row's
``source`` (the pre-filter's document id), so ``delete_ref_doc`` removes a document's nodes. The index's
``embed_model`` must be shortlist's :class:`~shortlist.llama_index.MiniLMEmbedding` (the collection records its
model; a vector of another dimension is refused).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from shortlist._vectorstore_rows import (
    DEFAULT_COLLECTION,
    KEY_CHUNK,
    KEY_SOURCE,
    make_rows,
    open_prefilter,
    row_id,
    user_metadata,
    write_rows,
)
from shortlist.config import SearchMode
from shortlist.errors import ConfigError
from shortlist.prefilter import Prefilter
from shortlist.types import Hit

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from shortlist.encoder import Encoder

__all__ = ["ShortlistVectorStore", "filters_to_where"]

logger = logging.getLogger(__name__)

#: Query options a call may pass in ``vector_store_kwargs`` (the pre-filter's names).
PASSED_OPTIONS = ("min_score", "where_document", "max_per_source", "fetch_k", "budget", "mmr_threshold")

_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}
_MODES: dict[VectorStoreQueryMode, SearchMode] = {
    VectorStoreQueryMode.DEFAULT: "dense",
    VectorStoreQueryMode.HYBRID: "hybrid",
    VectorStoreQueryMode.SEMANTIC_HYBRID: "hybrid",
    VectorStoreQueryMode.TEXT_SEARCH: "keyword",
    VectorStoreQueryMode.SPARSE: "keyword",
    VectorStoreQueryMode.MMR: "dense",
}


def filters_to_where(filters: MetadataFilters) -> dict[str, Any]:
    """LlamaIndex ``MetadataFilters`` as a Chroma ``where`` dict.

    Supports ``==``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``in`` and ``nin``, combined with ``and`` / ``or`` (nested
    filters too).

    Raises:
        ConfigError: on an operator or condition Chroma's metadata filters cannot express (the message names it).
    """
    clauses: list[dict[str, Any]] = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            clauses.append(filters_to_where(f))
            continue
        if not isinstance(f, MetadataFilter):  # pragma: no cover - ExactMatchFilter is a MetadataFilter
            msg = f"Unsupported filter {f!r}."
            raise ConfigError(msg)
        op = _OPERATORS.get(FilterOperator(f.operator))
        if op is None:
            supported = ", ".join(o.value for o in _OPERATORS)
            msg = f"Filter operator {f.operator!r} on {f.key!r} is not supported by shortlist's store; use {supported}."
            raise ConfigError(msg)
        clauses.append({f.key: {op: f.value}})
    if not clauses:
        msg = "MetadataFilters has no filters."
        raise ConfigError(msg)
    if len(clauses) == 1:
        return clauses[0]
    condition = filters.condition or FilterCondition.AND
    if condition not in (FilterCondition.AND, FilterCondition.OR):
        msg = f"Filter condition {condition!r} is not supported by shortlist's store; use 'and' or 'or'."
        raise ConfigError(msg)
    return {"$and" if condition == FilterCondition.AND else "$or": clauses}


class ShortlistVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over a :class:`~shortlist.prefilter.Prefilter`'s Chroma collection.

    Args:
        collection_name: The collection (default ``"shortlist"``, the CLI's).
        persist_dir: Folder of an embedded database (default: the pre-filter's default folder).
        client: A Chroma client you built, instead of ``persist_dir``.
        host: Host of a Chroma server.
        port: Its port (default 8000).
        prefilter: An existing pre-filter to wrap (then give no location).
        encoder: The encoder (default: the shared one); give the one your ``MiniLMEmbedding`` uses.
        in_memory: A private in-memory database (tests, notebooks).

    Raises:
        ConfigError: if a location is given with ``prefilter``.

    Example:
        ```python
        from llama_index.core import Document, VectorStoreIndex

        from shortlist.llama_index import MiniLMEmbedding, ShortlistVectorStore

        store = ShortlistVectorStore(in_memory=True)
        index = VectorStoreIndex.from_vector_store(store, embed_model=MiniLMEmbedding())
        index.insert(Document(text="Cats sleep most of the day.", id_="cats"))
        index.insert(Document(text="The stock market fell on Monday.", id_="stocks"))
        node = index.as_retriever(similarity_top_k=1).retrieve("How long do cats sleep?")[0]
        print(node.node.ref_doc_id, round(node.score, 2), store.prefilter.count())
        # cats 0.82 2
        ```
    """

    stores_text: bool = True
    is_embedding_query: bool = True
    flat_metadata: bool = False

    _prefilter: Prefilter = PrivateAttr()

    def __init__(
        self,
        collection_name: str = DEFAULT_COLLECTION,
        *,
        persist_dir: str | Path | None = None,
        client: ClientAPI | None = None,
        host: str | None = None,
        port: int | None = None,
        prefilter: Prefilter | None = None,
        encoder: Encoder | None = None,
        in_memory: bool = False,
    ) -> None:
        super().__init__(stores_text=True)
        self._prefilter = open_prefilter(
            collection_name,
            prefilter=prefilter,
            location=("persist_dir", persist_dir),
            client=client,
            host=host,
            port=port,
            in_memory=in_memory,
            encoder=encoder,
            exclusive=(("encoder", encoder),),
        )

    @classmethod
    def from_prefilter(cls, prefilter: Prefilter) -> ShortlistVectorStore:
        """A vector store over ``prefilter``'s collection (its encoder too)."""
        return cls(prefilter=prefilter)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records for this class."""
        return "ShortlistVectorStore"

    @property
    def client(self) -> Any:
        """The Chroma client."""
        return self._prefilter.store.client

    @property
    def prefilter(self) -> Prefilter:
        """The pre-filter this store searches."""
        return self._prefilter

    # ------------------------------------------------------------------ writing
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store nodes (their text, metadata and the vectors LlamaIndex computed); an id already stored is replaced.

        Returns:
            The node ids.

        Raises:
            InputError: on a node without text or with metadata shortlist cannot store (nothing is written).
            EmbeddingModelMismatchError: on vectors of another dimension than the collection's.
        """
        del add_kwargs
        if not nodes:
            return []
        ids = [row_id(n.node_id, f"nodes[{i}].node_id") for i, n in enumerate(nodes)]
        texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        metas = [dict(n.metadata) for n in nodes]
        sources = [n.ref_doc_id for n in nodes]
        records = make_rows(self._prefilter, texts, metas, ids, sources)
        embeddings = [n.embedding for n in nodes]
        vectors = embeddings if all(e is not None for e in embeddings) else None
        write_rows(self._prefilter, records, vectors)
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``."""
        del delete_kwargs
        self._prefilter.delete(ref_doc_id)

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete nodes by id and/or metadata filter (with neither, nothing is deleted: use :meth:`clear`)."""
        del delete_kwargs
        if node_ids is None and filters is None:
            return
        where = filters_to_where(filters) if filters is not None else None
        if where is None:
            self._prefilter.delete(ids=list(node_ids or []))
        else:
            self._prefilter.store.delete(node_ids, where=where)

    def clear(self) -> None:
        """Delete every row of the collection."""
        self._prefilter.store.delete(where={KEY_CHUNK: {"$gte": 0}})

    # ------------------------------------------------------------------ reading
    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id and/or metadata filter (all of them with neither)."""
        where = filters_to_where(filters) if filters is not None else None
        store = self._prefilter.store
        if node_ids is not None:
            chunks = store.get(node_ids, where=where)
        else:
            chunks = [c for batch in store.iter_chunks(where=where) for c in batch]
        return [_node(c.id, c.text, c.metadata, c.embedding) for c in chunks]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Run a LlamaIndex query through :meth:`Prefilter.search` (see the module for the modes).

        Raises:
            ConfigError: on a query mode or option the store does not support.
        """
        unknown = [k for k in kwargs if k not in PASSED_OPTIONS]
        if unknown:
            msg = f"Unknown vector_store_kwargs {unknown} for {type(self).__name__}; use {', '.join(PASSED_OPTIONS)}."
            raise ConfigError(msg)
        mode = _MODES.get(VectorStoreQueryMode(query.mode))
        if mode is None:
            supported = ", ".join(sorted({m.value for m in _MODES}))
            msg = f"Query mode {query.mode!r} is not supported by shortlist's store; use one of {supported}."
            raise ConfigError(msg)
        if query.node_ids:
            msg = "Queries restricted to node_ids are not supported by shortlist's store; filter on metadata instead."
            raise ConfigError(msg)
        options = dict(kwargs)
        lam = options.pop("mmr_threshold", None)
        if query.mode == VectorStoreQueryMode.MMR:
            lam = query.mmr_threshold if query.mmr_threshold is not None else lam
            options.update(mmr=True, mmr_lambda=0.5 if lam is None else float(lam))
        clauses = []
        if query.filters is not None:
            clauses.append(filters_to_where(query.filters))
        if query.doc_ids:
            docs = list(query.doc_ids)
            clauses.append({KEY_SOURCE: {"$in": docs}} if len(docs) > 1 else {KEY_SOURCE: docs[0]})
        if clauses:
            options["where"] = clauses[0] if len(clauses) == 1 else {"$and": clauses}
        text = query.query_str or ""
        if mode == "dense" and query.query_embedding is not None:
            target: Any = query.query_embedding
        elif text.strip():
            target = text
        else:
            msg = f"A {mode} query needs the question's text (query_str)."
            raise ConfigError(msg)
        result = self._prefilter.search(target, k=query.similarity_top_k, mode=mode, **options)
        nodes = [_hit_node(hit) for hit in result]
        return VectorStoreQueryResult(
            nodes=nodes, similarities=[float(h.score) for h in result], ids=[h.id for h in result]
        )

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """:meth:`query` in a worker thread, so the event loop keeps running while the question is embedded."""
        return await asyncio.to_thread(self.query, query, **kwargs)

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """:meth:`add` in a worker thread."""
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """:meth:`delete` in a worker thread."""
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)


def _hit_node(hit: Hit) -> TextNode:
    return _node(hit.id, hit.text, hit.metadata, None)


def _node(id_: str, text: str, metadata: Mapping[str, Any], embedding: Any) -> TextNode:
    meta, source = user_metadata(id_, text, metadata)
    relationships = {}
    if source is not None:
        relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=source)
        if meta.get(KEY_SOURCE) == source and KEY_CHUNK not in meta:
            meta.pop(KEY_SOURCE)  # the ref_doc_id this store wrote as the row's source, not the user's key
    vector = None if embedding is None else [float(x) for x in embedding]
    return TextNode(id_=id_, text=text, metadata=meta, relationships=relationships, embedding=vector)
