"""The store's reads: by id, by filter, or all, a page at a time (Chroma's SQLite refuses very large ``IN`` lists).

:class:`PagedReads` is the reading half of :class:`shortlist.store.ChunkStore` (which inherits it): reads by id,
by filter or of everything, a page at a time, and nearest-neighbour queries. Every method here only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.config import DEFAULT_CHROMA_PORT, ChromaServer
from shortlist.errors import InputError, StoreError
from shortlist.store.contract import ModelContract
from shortlist.store.metadata import KEY_SOURCE, FieldRegistry
from shortlist.store.records import StoredChunk, include_fields, stored_chunk, stored_rows

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["READ_PAGE", "PagedReads"]

READ_PAGE = 2000  # rows per read: Chroma's SQLite refuses very large IN lists ("too many SQL variables")
_SOURCES_PER_FILTER = 500


#: Chroma's message for a read by ids that raced another client's delete of some of them (retried once).
_RACED_DELETE = "Error finding id"


class PagedReads:
    """Reading a Chroma collection in pages, and nearest-neighbour queries; the base of ChunkStore."""

    collection: Collection
    name: str
    kind: str
    host: str | None
    port: int | None
    _contract: ModelContract
    _fields: FieldRegistry

    def _failed(self, message: str, exc: BaseException) -> str:
        """``message`` about a failed Chroma call, naming the Chroma server (and what to check) for a server store."""
        if self.kind != "server" or self.host is None:
            return message
        return ChromaServer(self.host, self.port or DEFAULT_CHROMA_PORT).explain(exc, message)

    def _tokens_of(self, ids: Sequence[str]) -> dict[str, int]:
        return {c.id: c.tokens for c in self.get(ids, include_text=False)}

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` already stored."""
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        for start in range(0, len(wanted), READ_PAGE):
            res = self._get(ids=wanted[start : start + READ_PAGE], include=[])
            found.update(res["ids"])
        return found

    def ids_of_sources(self, sources: Sequence[str]) -> set[str]:
        """Ids of every stored chunk whose document is one of ``sources``."""
        out: set[str] = set()
        unique = list(dict.fromkeys(sources))
        for start in range(0, len(unique), _SOURCES_PER_FILTER):
            part = unique[start : start + _SOURCES_PER_FILTER]
            filt = {KEY_SOURCE: {"$in": part}} if len(part) > 1 else {KEY_SOURCE: part[0]}
            out.update(c.id for batch in self.iter_chunks(where=filt, include_text=False) for c in batch)
        return out

    def _ask(self, call: Callable[..., Any], invalid: str, failed: str, **kwargs: Any) -> Any:
        """Run one Chroma read; a ``ValueError`` (a bad filter) becomes InputError, any other error StoreError.

        A read by ids that Chroma fails with "Error finding id" (it happens, about once in a hundred, when another
        client deletes some of those ids at that moment) is asked once more: the second answer is consistent.
        """
        try:
            try:
                return call(**kwargs)
            except Exception as exc:
                if _RACED_DELETE not in str(exc):
                    raise
                return call(**kwargs)
        except ValueError as exc:
            msg = f"{invalid} {self.name!r}: {exc}"
            raise InputError(msg) from exc
        except Exception as exc:
            msg = f"Chroma could not {failed} {self.name!r}: {exc}"
            raise StoreError(self._failed(msg, exc)) from exc

    def _get(self, **kwargs: Any) -> Any:
        return self._ask(self.collection.get, "Invalid request to collection", "read collection", **kwargs)

    def _pages(
        self,
        where: Mapping[str, Any] | None,
        where_document: Mapping[str, Any] | None,
        include: list[str],
        page: int,
    ) -> Iterator[Any]:
        """Chroma's answers for every chunk matching the filters, ``page`` rows at a time (empty pages left out).

        The matching ids are listed in one call and the rows read by id, ``page`` at a time: Chroma pages by
        offset, and an offset costs a scan of every row before it (0.8 s a page of 2,000 at 300k chunks), which
        made reading a whole collection quadratic. A row deleted between the two reads is left out; the filters
        are asked again with the ids, so a row whose metadata changed in between is too.
        """
        filters = {
            "where": dict(where) if where else None,
            "where_document": dict(where_document) if where_document else None,
        }
        ids = list(self._get(**filters, include=[])["ids"])
        for start in range(0, len(ids), page):
            part = ids[start : start + page]
            if not include:
                yield {"ids": part}
                continue
            res = self._get(ids=part, **filters, include=include)
            if res["ids"]:
                yield res

    def get(
        self,
        ids: Sequence[str],
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include_text: bool = True,
        include_embeddings: bool = False,
    ) -> list[StoredChunk]:
        """Read chunks by id (those not stored, or not matching the filters, are left out), in the order given."""
        include = include_fields(include_text, include_embeddings)
        found: dict[str, StoredChunk] = {}
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), READ_PAGE):
            res = self._get(
                ids=wanted[start : start + READ_PAGE],
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,
                include=include,
            )
            found.update((c.id, c) for c in stored_rows(res))
        return [found[i] for i in wanted if i in found]

    def iter_ids(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        page: int = READ_PAGE,
    ) -> Iterator[list[str]]:
        """The ids of every stored chunk (matching the filters), a page at a time, in Chroma's order.

        Args:
            where: A metadata filter (Chroma syntax), or ``None`` for all chunks.
            where_document: A filter on the text (``{"$contains": "..."}``), or ``None``.
            page: Ids per page (per request to Chroma).

        Yields:
            Lists of at most ``page`` ids.

        Raises:
            InputError: for a filter Chroma refuses.
            StoreError: if Chroma cannot be read.
        """
        for res in self._pages(where, where_document, [], page):
            yield list(res["ids"])

    def ids(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        page: int = READ_PAGE,
    ) -> list[str]:
        """The ids of every stored chunk (matching the filters), in Chroma's order (see :meth:`iter_ids`)."""
        return [id_ for part in self.iter_ids(where=where, where_document=where_document, page=page) for id_ in part]

    def iter_chunks(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include_text: bool = True,
        include_embeddings: bool = False,
        page: int = READ_PAGE,
    ) -> Iterator[list[StoredChunk]]:
        """Read every chunk (matching ``where`` and ``where_document``), a page at a time."""
        for res in self._pages(where, where_document, include_fields(include_text, include_embeddings), page):
            yield stored_rows(res)

    def query(
        self,
        vector: Any,
        n: int,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include_embeddings: bool = False,
        include_text: bool = True,
    ) -> list[StoredChunk]:
        """The ``n`` chunks nearest to ``vector`` (by Chroma's HNSW index), best first, with cosine scores.

        ``include_text=False`` reads ids and scores only (text ``""``, metadata empty): much cheaper for a large
        ``n`` whose texts are mostly not needed (Chroma reads each row's text and metadata one by one).

        Raises:
            InputError: for a vector of the wrong shape or a bad filter.
            EmbeddingModelMismatchError: for a vector of another dimension.
            StoreError: if Chroma fails.
        """
        vec = self._contract.check_vectors(np.asarray(vector, dtype=np.float32).reshape(1, -1), 1, self.name)
        if where is not None:
            self._fields.check_where(where)
        if n <= 0:
            return []
        include = (["metadatas", "documents"] if include_text else []) + ["distances"]
        include += ["embeddings"] if include_embeddings else []
        res = self._ask(
            self.collection.query,
            "Invalid query filter for collection",
            "query collection",
            query_embeddings=vec,
            n_results=int(n),
            where=dict(where) if where else None,
            where_document=dict(where_document) if where_document else None,
            include=include,
        )
        ids = res["ids"][0]
        dists = res["distances"][0] if res.get("distances") else [1.0] * len(ids)
        docs = res["documents"][0] if res.get("documents") else [None] * len(ids)
        metas = res["metadatas"][0] if res.get("metadatas") else [None] * len(ids)
        embs = res.get("embeddings")
        emb_list = embs[0] if embs is not None else [None] * len(ids)
        # Chroma's cosine distance is 1 - cosine similarity: convert back exactly once, here.
        return [stored_chunk(ids[i], docs[i], metas[i], float(1.0 - dists[i]), emb_list[i]) for i in range(len(ids))]
