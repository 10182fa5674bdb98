"""LangChain ``VectorStore`` over a pre-filter's Chroma collection: :class:`ShortlistVectorStore`.

Re-exported as :class:`shortlist.langchain.ShortlistVectorStore`. Code written for ``langchain_chroma.Chroma`` switches
by changing the class: the same constructors (``from_texts``, ``from_documents``, ``collection_name``,
``persist_directory``, ``client``), ``add_documents``/``add_texts`` with ids, ``similarity_search`` with ``filter=``
(a Chroma ``where`` dict), ``max_marginal_relevance_search``, ``delete``, ``get_by_ids`` and ``as_retriever()``.
What differs, on purpose:

- searches run through :meth:`Prefilter.search <shortlist.prefilter.Prefilter.search>`: hybrid (dense + BM25) by
  default, ``mode="dense"`` for Chroma's pure vector order; every pre-filter option (``mode``, ``min_score``,
  ``budget``, ``max_per_source``, ``where_document``, ``fetch_k``) can be given per call or in
  ``as_retriever(search_kwargs=...)``;
- ``similarity_search_with_score`` returns the **cosine similarity** (higher is closer), not Chroma's distance;
- vectors come from shortlist's own encoder (the ``embedding`` must be a :class:`MiniLMEmbeddings` or ``None``): the
  collection records its model, and two models' vectors are never mixed;
- ``delete()`` with no ids and no filter refuses (it would empty the collection) instead of deleting everything.

One LangChain document is one row of the collection, stored as given: its ``page_content`` unchanged (not cleaned,
split or headed by a title, unlike :meth:`Prefilter.add_documents`), its id the one given (``ids=`` or
``Document.id``) or a new UUID, its metadata returned exactly as given. Its ``source`` (the pre-filter's document
id, used by ``max_per_source`` and ``Prefilter.delete(source)``) is ``metadata["source"]`` when that is a string
(LangChain's loaders set it to the file), else the row's id. Chunks the pre-filter ingested itself
are found too; their documents carry the pre-filter's ``source`` and ``chunk`` keys.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from shortlist._vectorstore_rows import (
    DEFAULT_COLLECTION,
    KEY_SOURCE,
    make_rows,
    open_prefilter,
    row_id,
    user_metadata,
    write_rows,
)
from shortlist.config import DEFAULT_K, DEFAULT_MODE, SearchMode
from shortlist.errors import ConfigError, InputError
from shortlist.prefilter import Prefilter
from shortlist.search.options import SEARCH_MODES
from shortlist.types import Hit, Shortlist

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from shortlist.encoder import Encoder

__all__ = ["ShortlistVectorStore"]

logger = logging.getLogger(__name__)

#: Options of ``Prefilter.search`` a search call may pass through (``k``, ``filter`` and MMR's are named apart).
PASSED_OPTIONS = ("min_score", "where_document", "mode", "mmr", "mmr_lambda", "fetch_k", "max_per_source", "budget")


def _encoder_of(embedding: Embeddings | None) -> Encoder | None:
    """The shortlist encoder behind ``embedding`` (``None``: the shared one); any other embeddings are refused."""
    if embedding is None:
        return None
    from shortlist.encoder import Encoder

    encoder = getattr(embedding, "encoder", None)  # a MiniLMEmbeddings (not imported: the adapter imports us)
    if isinstance(encoder, Encoder):
        return encoder
    msg = (
        f"ShortlistVectorStore embeds with shortlist's own encoder, not with {type(embedding).__name__}: pass "
        "embedding=MiniLMEmbeddings() (or None for the shared default). The collection records its model, so "
        "another model's vectors cannot be mixed in."
    )
    raise ConfigError(msg)


class ShortlistVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over a :class:`~shortlist.prefilter.Prefilter`'s Chroma collection.

    Args:
        collection_name: The collection (default ``"shortlist"``, the CLI's).
        embedding_function: A :class:`~shortlist.langchain.MiniLMEmbeddings` (its encoder is used) or ``None``
            (the shared encoder). Other embeddings raise :class:`~shortlist.errors.ConfigError`.
        persist_directory: Folder of an embedded database (default: the pre-filter's, ``SHORTLIST_CHROMA_PATH`` or
            ``<SHORTLIST_HOME>/chroma``).
        client: A Chroma client you built, instead of ``persist_directory``.
        host: Host of a Chroma server, instead of a folder.
        port: Its port (default 8000).
        prefilter: An existing pre-filter to wrap (then give none of the location arguments).
        mode: The default search mode: ``"hybrid"`` (default), ``"dense"`` (Chroma's order) or ``"keyword"``.
        **search_defaults: Default :meth:`Prefilter.search` options for every search (``min_score``, ``budget``,
            ``max_per_source``, ``where_document``, ``fetch_k``).

    Raises:
        ConfigError: on foreign embeddings, a location given with ``prefilter``, or an unknown option.

    Example:
        ```python
        from langchain_core.documents import Document

        from shortlist.langchain import ShortlistVectorStore

        docs = [
            Document(page_content="Cats sleep most of the day.", metadata={"kind": "pets"}),
            Document(page_content="The stock market fell on Monday.", metadata={"kind": "news"}),
        ]
        store = ShortlistVectorStore.from_documents(docs, ids=["cats", "stocks"], in_memory=True)
        doc, score = store.similarity_search_with_score("How long do cats sleep?", k=1)[0]
        print(doc.id, doc.metadata, round(score, 2))
        # cats {'kind': 'pets'} 0.82
        ```
    """

    def __init__(
        self,
        collection_name: str = DEFAULT_COLLECTION,
        embedding_function: Embeddings | None = None,
        persist_directory: str | Path | None = None,
        *,
        client: ClientAPI | None = None,
        host: str | None = None,
        port: int | None = None,
        prefilter: Prefilter | None = None,
        in_memory: bool = False,
        mode: SearchMode = DEFAULT_MODE,
        **search_defaults: Any,
    ) -> None:
        encoder = _encoder_of(embedding_function)
        _check_options(search_defaults, type(self).__name__)
        self._prefilter = open_prefilter(
            collection_name,
            prefilter=prefilter,
            location=("persist_directory", persist_directory),
            client=client,
            host=host,
            port=port,
            in_memory=in_memory,
            encoder=encoder,
        )
        if prefilter is not None and encoder is not None and encoder is not prefilter.encoder:
            msg = "embedding_function's encoder is not the pre-filter's: leave it out, the pre-filter's is used."
            raise ConfigError(msg)
        self._mode: SearchMode = mode
        self._embedding = embedding_function
        self._defaults = dict(search_defaults)
        if mode not in SEARCH_MODES:
            msg = f"mode must be one of {', '.join(map(repr, SEARCH_MODES))}, got {mode!r}."
            raise ConfigError(msg)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_prefilter(cls, prefilter: Prefilter, **options: Any) -> ShortlistVectorStore:
        """A vector store over ``prefilter``'s collection; ``options`` are ``mode`` and default search options.

        Args:
            prefilter: The pre-filter (its encoder and collection are used).
            **options: ``mode`` and :meth:`Prefilter.search` defaults (``min_score``, ``budget``...).

        Returns:
            The vector store.
        """
        return cls(prefilter=prefilter, **options)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        collection_name: str = DEFAULT_COLLECTION,
        **kwargs: Any,
    ) -> ShortlistVectorStore:
        """A vector store (see the class for ``kwargs``) holding ``texts``.

        Args:
            texts: The texts.
            embedding: ``MiniLMEmbeddings`` or ``None``.
            metadatas: One dict per text.
            ids: One id per text (default: new UUIDs).
            collection_name: The collection.
            **kwargs: The class's other arguments (``persist_directory``, ``client``, ``prefilter``, ``mode``...).

        Returns:
            The vector store.
        """
        store = cls(collection_name, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> ShortlistVectorStore:
        """A vector store (see :meth:`from_texts`) holding ``documents`` (their ids are kept)."""
        texts = [d.page_content for d in documents]
        metadatas = [d.metadata for d in documents]
        if "ids" not in kwargs and any(d.id for d in documents):
            kwargs["ids"] = [d.id or str(uuid.uuid4()) for d in documents]
        return cls.from_texts(texts, embedding, metadatas, **kwargs)

    # ------------------------------------------------------------------ facts
    @property
    def prefilter(self) -> Prefilter:
        """The pre-filter this store searches."""
        return self._prefilter

    @property
    def embeddings(self) -> Embeddings:
        """The LangChain embeddings given, else embeddings over this store's encoder."""
        return self._embedding if self._embedding is not None else _EncoderEmbeddings(self._prefilter.encoder)

    def __repr__(self) -> str:
        return f"ShortlistVectorStore({self._prefilter.store!r}, mode={self._mode!r})"

    # ------------------------------------------------------------------ writing
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store texts, one row each; an id already stored is overwritten.

        Args:
            texts: The texts (stored unchanged; each must have some non-space character).
            metadatas: One dict (or ``None``) per text.
            ids: One id per text; a ``None`` or empty id gets a new UUID.
            **kwargs: Not used (LangChain passes none).

        Returns:
            The ids, in order.

        Raises:
            InputError: on an empty text, a bad id or metadata shortlist cannot store (nothing is written).
            ConfigError: if ``metadatas`` or ``ids`` do not match ``texts`` in length.
        """
        del kwargs
        items = list(texts)
        n = len(items)
        for name, seq in (("metadatas", metadatas), ("ids", ids)):
            if seq is not None and len(seq) != n:
                msg = f"{name} has {len(seq)} entries for {n} texts."
                raise ConfigError(msg)
        out_ids = [row_id(ids[i] if ids is not None else None, f"ids[{i}]") for i in range(n)]
        metas = [dict(metadatas[i] or {}) if metadatas is not None else {} for i in range(n)]
        sources = [m.get(KEY_SOURCE) if isinstance(m.get(KEY_SOURCE), str) else None for m in metas]
        write_rows(self._prefilter, make_rows(self._prefilter, items, metas, out_ids, sources))
        return out_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete rows by id, or by a metadata filter (``filter=`` / ``where=``, Chroma syntax).

        Ids not stored are ignored. Deleting everything needs an explicit filter, e.g. ``filter={"chunk": {"$gte":
        0}}``: ``delete()`` alone refuses rather than empty the collection.

        Returns:
            ``True``.

        Raises:
            InputError: with neither ids nor a filter, or on a bad filter.
        """
        where = kwargs.pop("filter", None) or kwargs.pop("where", None)
        if kwargs:
            msg = f"Unknown argument(s) for delete: {', '.join(sorted(kwargs))}; give ids or filter=."
            raise ConfigError(msg)
        if ids is None and where is None:
            msg = (
                "delete() needs ids or filter=; nothing was deleted. To empty the collection, say so: "
                "delete(filter={'chunk': {'$gte': 0}})."
            )
            raise InputError(msg)
        if where is not None:
            self._prefilter.store.delete(ids, where=where)
        elif ids:
            self._prefilter.delete(ids=list(ids))
        return True

    # ------------------------------------------------------------------ reading
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents stored under ``ids`` (ids not stored are left out), in the order given."""
        return [_to_document(c.id, c.text, c.metadata) for c in self._prefilter.store.get(list(ids))]

    def shortlist(self, query: str | Sequence[float], k: int = DEFAULT_K, **kwargs: Any) -> Shortlist:
        """The :class:`~shortlist.types.Shortlist` (hits and figures) for ``query``, with this store's options.

        Args:
            query: The question, or a query vector (dense mode).
            k: Most hits.
            **kwargs: ``filter`` (Chroma ``where``) and :meth:`Prefilter.search` options.

        Returns:
            The shortlist.
        """
        options = {**self._defaults, **kwargs}
        where = options.pop("filter", None)
        if where is None:
            where = options.pop("where", None)
        else:
            options.pop("where", None)
        _check_options(options, type(self).__name__)
        options.setdefault("mode", self._mode if isinstance(query, str) else "dense")
        return self._prefilter.search(query, k=k, where=where, **options)

    def similarity_search(self, query: str, k: int = DEFAULT_K, **kwargs: Any) -> list[Document]:
        """The ``k`` documents best matching ``query`` (``filter=`` and pre-filter options accepted)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = DEFAULT_K, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their cosine similarity to ``query`` (higher is closer), in the search's order."""
        return [(_hit_document(hit), float(hit.score)) for hit in self.shortlist(query, k, **kwargs)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = DEFAULT_K, **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest to a query vector of this store's encoder (dense search)."""
        kwargs["mode"] = "dense"
        return [_hit_document(hit) for hit in self.shortlist(embedding, k, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _cosine_as_relevance

    def max_marginal_relevance_search(
        self, query: str, k: int = DEFAULT_K, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """``k`` documents picked for relevance and diversity among ``fetch_k`` candidates (maximal marginal relevance).

        ``lambda_mult`` is 1.0 for pure relevance, 0.0 for pure diversity. Runs in the store's mode (hybrid by
        default: relevance is then the fused order's score).
        """
        kwargs.update(mmr=True, mmr_lambda=lambda_mult, fetch_k=max(fetch_k, k))
        return [_hit_document(hit) for hit in self.shortlist(query, k, **kwargs)]

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = DEFAULT_K, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """As :meth:`max_marginal_relevance_search`, from a query vector (dense search)."""
        kwargs.update(mmr=True, mmr_lambda=lambda_mult, fetch_k=max(fetch_k, k), mode="dense")
        return [_hit_document(hit) for hit in self.shortlist(embedding, k, **kwargs)]


def _cosine_as_relevance(score: float) -> float:
    return score


class _EncoderEmbeddings(Embeddings):
    """LangChain embeddings over an encoder (what :attr:`ShortlistVectorStore.embeddings` gives when none was)."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.embed_documents(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.embed_query(text).tolist()  # type: ignore[no-any-return]


def _check_options(options: Mapping[str, Any], owner: str) -> None:
    unknown = [name for name in options if name not in PASSED_OPTIONS]
    if unknown:
        msg = (
            f"Unknown search option(s) {', '.join(map(repr, unknown))} for {owner}; use k, filter or one of: "
            f"{', '.join(PASSED_OPTIONS)}."
        )
        raise ConfigError(msg)


def _hit_document(hit: Hit) -> Document:
    return _to_document(hit.id, hit.text, hit.metadata)


def _to_document(id_: str, text: str, metadata: Mapping[str, Any]) -> Document:
    """A stored row as a LangChain document, its metadata as given at ingest (see :func:`user_metadata`)."""
    return Document(id=id_, page_content=text, metadata=user_metadata(id_, text, metadata)[0])
