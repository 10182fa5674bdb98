"""A search's candidates from a :class:`~shortlist.store.ChunkStore` and its keyword index.

The one bridge between the plain stages of :mod:`shortlist.search.pipeline` and the store: nearest chunks by
vector (Chroma), best chunks by BM25 (the collection's :class:`~shortlist.keywords.cache.KeywordCache`), and chunks
read back by id with their vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shortlist.keywords.cache import KeywordCache
    from shortlist.store import ChunkStore, StoredChunk

__all__ = ["StoreSource"]


class StoreSource:
    """The :class:`~shortlist.search.pipeline.CandidateSource` of a collection.

    Args:
        store: The collection.
        keywords: Its keyword index cache.
    """

    def __init__(self, store: ChunkStore, keywords: KeywordCache) -> None:
        self.store = store
        self.keywords = keywords

    def dense(
        self,
        vector: np.ndarray[Any, np.dtype[np.float32]],
        n: int,
        *,
        where: Mapping[str, Any] | None,
        where_document: Mapping[str, Any] | None,
        with_vectors: bool,
        with_text: bool = True,
    ) -> Sequence[StoredChunk]:
        """The ``n`` nearest chunks (Chroma's HNSW index), best first, cosine in ``score``."""
        return self.store.query(
            vector,
            n,
            where=where,
            where_document=where_document,
            include_embeddings=with_vectors,
            include_text=with_text,
        )

    def keyword(
        self, text: str, n: int, *, where: Mapping[str, Any] | None, where_document: Mapping[str, Any] | None
    ) -> list[tuple[str, float]]:
        """The ``n`` best ``(id, bm25)`` pairs; with filters, ranked among the chunks they let through (exact)."""
        if where is None and where_document is None:
            return self.keywords.search(text, n)
        return self.keywords.search(text, n, self.store.ids(where=where, where_document=where_document))

    def chunks(self, ids: Sequence[str], *, with_text: bool) -> Sequence[StoredChunk]:
        """The chunks with these ids that still exist, with their vectors."""
        if with_text:
            return self.store.get(list(ids), include_embeddings=True)
        return self.store.get(list(ids), include_text=False, include_embeddings=True)
