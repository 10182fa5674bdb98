"""Prefilter: narrow thousands of chunks to a top-k shortlist before an LLM reads them.

A short facade over the two paths. Ingest (:mod:`shortlist.ingest`): coerce documents -> chunk (titles) -> diff
against the store -> embed the new chunks -> write -> :class:`IngestReport`. Search (:mod:`shortlist.search`):
encode the question -> Chroma's nearest chunks plus, in hybrid mode, BM25 candidates (:mod:`shortlist.keywords`)
-> fuse (:attr:`Prefilter.fusion`, see :mod:`shortlist.fusion`) -> ``min_score`` threshold (cosine) -> cap per
document -> MMR (optional) -> top ``k`` -> token budget (optional) -> :class:`~shortlist.types.Shortlist`.

Example:
    ```python
    from shortlist import Prefilter

    pf = Prefilter.in_memory("example")
    pf.add_documents(["Cats sleep most of the day.", "The stock market fell on Monday."])
    result = pf.search("How long do cats sleep?", k=1)
    print(result.hits[0].text, round(result.hits[0].score, 2), result.stats.saved_share > 0)
    # Cats sleep most of the day. 0.82 True
    ```
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.config import DEFAULT_COLLECTION, DEFAULT_K, DEFAULT_MODE, SearchMode
from shortlist.errors import InputError
from shortlist.ingest import DEFAULT_INGEST_BATCH, Ingestor, IngestReport
from shortlist.ingest.chunking import check_chunking
from shortlist.keywords.cache import KeywordCache
from shortlist.keywords.calibration import Calibration
from shortlist.search import pipeline
from shortlist.search.calibration import calibrate_collection
from shortlist.search.fusion import RRF_K, AdaptiveFusion, Fusion, rrf
from shortlist.search.options import SEARCH_MODES, SearchOptions, check_where_document
from shortlist.search.sources import StoreSource
from shortlist.search.stages import Candidate
from shortlist.store import KEY_TITLE, ChunkStore
from shortlist.text import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS
from shortlist.types import Shortlist

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from shortlist.encoder import Encoder
    from shortlist.keywords.segments import LiveKeywordIndex

__all__ = [
    "DEFAULT_MODE",
    "Candidate",
    "Fusion",
    "IngestReport",
    "Prefilter",
    "SearchMode",
    "rrf",
]

logger = logging.getLogger(__name__)

_MODES = SEARCH_MODES  # the old private name
_ = (DEFAULT_INGEST_BATCH, RRF_K)  # importable from here as before
#: SearchStats.chunks_total may use a collection count this recent (seconds); this process's writes refresh it.
_COUNT_MAX_AGE = 1.0


class Prefilter:
    """A Chroma-backed pre-filter: ingest documents once, then shortlist the chunks worth an LLM's attention.

    Args:
        collection: The Chroma collection's name. Default ``"shortlist"``.
        path: Folder of the embedded database (default ``SHORTLIST_CHROMA_PATH`` or ``<SHORTLIST_HOME>/chroma``).
        host: Host of a Chroma server (``chroma run``) instead of a folder.
        port: Its port (default 8000).
        client: A Chroma client you built, instead of ``path``/``host``.
        encoder: The encoder; default :meth:`Encoder.shared() <shortlist.encoder.Encoder.shared>`.
        chunk_tokens: Most word pieces in one chunk (default 128; at most the model's 254).
        chunk_overlap: Word pieces carried from one chunk to the next (default 16).
        fusion: How hybrid search merges its dense and keyword lists. Default: an
            :class:`~shortlist.fusion.AdaptiveFusion` over this collection's :meth:`calibration` (dense weight
            calibrated from the collection's own chunks, by query script), obtained before each hybrid search;
            :func:`rrf` is the fixed-weight classic.
        store: A :class:`~shortlist.store.ChunkStore` to use instead of opening one.
        title_key: Metadata key of a document's title (default ``"title"``; ``None``: off). A document that has one
            gets it at the head of **every** chunk, within ``chunk_tokens`` (a title over a third of it is not
            repeated): see :mod:`shortlist.ingest.chunking`. On SciFact this lifts hybrid nDCG@10 by about 0.015
            (``benchmarks/hybrid.py``).

    Raises:
        ConfigError: on bad chunk sizes or conflicting locations.
        EmbeddingModelMismatchError: if the collection holds another model's vectors.
        StoreError: if Chroma cannot be opened.

    The keyword index (hybrid and keyword modes) is built from the collection's own chunks once, kept on disk
    (beside the Chroma files for an embedded store, in ``SHORTLIST_CACHE`` for a server) and follows the
    collection's change journal: a write through shortlist by any process is seen by keyword and hybrid search in
    every process attached to the collection, about a second later on a Chroma server, at once in the writing
    process (:mod:`shortlist.keywords.cache`). Writes of plain ``chromadb`` clients are caught by a periodic
    reconciliation, or at once with :meth:`refresh_keyword_index`.
    """

    def __init__(
        self,
        collection: str = DEFAULT_COLLECTION,
        *,
        path: str | Path | None = None,
        host: str | None = None,
        port: int | None = None,
        client: ClientAPI | None = None,
        encoder: Encoder | None = None,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
        fusion: Fusion | None = None,
        store: ChunkStore | None = None,
        title_key: str | None = KEY_TITLE,
    ) -> None:
        if encoder is None:
            from shortlist.encoder import Encoder

            encoder = Encoder.shared()
        self.encoder = encoder
        check_chunking(chunk_tokens, chunk_overlap, title_key, max_tokens=encoder.max_text_tokens)
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.title_key = title_key
        self._fusion = fusion
        self._owns_store = store is None  # close() closes a store it opened, not one given to it
        self.store = (
            store
            if store is not None
            else ChunkStore(collection, path=path, host=host, port=port, client=client, encoder=encoder)
        )
        self._keywords = KeywordCache.shared(self.store, log=logger)
        self._keywords_closed = False
        self._warned_empty = False
        self._warmed = False

    @classmethod
    def in_memory(cls, collection: str = DEFAULT_COLLECTION, encoder: Encoder | None = None, **kw: Any) -> Prefilter:
        """A pre-filter over a private in-memory Chroma database (for tests and notebooks)."""
        if encoder is None:
            from shortlist.encoder import Encoder

            encoder = Encoder.shared()
        store = ChunkStore.in_memory(collection, encoder=encoder)
        prefilter = cls(collection, encoder=encoder, store=store, **kw)
        prefilter._owns_store = True
        return prefilter

    def close(self) -> None:
        """Stop the keyword side's background work and close the store this pre-filter opened.

        For an embedded folder this gives back the pre-filter's hold on it: Chroma's embedded mode allows one
        process per folder (a second one gets a :class:`~shortlist.errors.StoreError` naming ``chroma run``), so
        close a pre-filter before another process (``shortlist index --db ...``, say) opens the same folder. A
        store passed as ``store=`` is left open (close it yourself). Closing twice does nothing. A pre-filter is
        also a context manager: ``with Prefilter(path=...) as pf: ...``.
        """
        try:
            if not self._keywords_closed:
                self._keywords_closed = True
                self._keywords.close()
        finally:
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> Prefilter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Prefilter({self.store!r}, chunk_tokens={self.chunk_tokens}, chunk_overlap={self.chunk_overlap})"

    @property
    def fusion(self) -> Fusion:
        """How hybrid search merges its lists: the one given, else an :class:`~shortlist.fusion.AdaptiveFusion`
        over the collection's current :meth:`calibration` (never computed inside a search: the priors until the
        first one is there, then the last one until the collection changed materially and a new one is ready).
        Assign ``None`` for the default.
        """  # noqa: D205
        if self._fusion is not None:
            return self._fusion
        return AdaptiveFusion(self._keywords.current_calibration(self._calibrate))

    @fusion.setter
    def fusion(self, value: Fusion | None) -> None:
        self._fusion = value

    # ------------------------------------------------------------------ small API
    def count(self) -> int:
        """Chunks in the collection."""
        return self.store.count()

    def __len__(self) -> int:
        return self.count()

    def corpus_tokens(self) -> int:
        """Word pieces in all chunks of the collection.

        Read from the keyword copy when there is one (a sum tantivy keeps, in step with the store as the keyword side
        is), else counted once from the store's metadata (a scan of every chunk: seconds at 100k chunks).
        """
        if self._keywords.has_copy:
            return self._keywords.corpus_tokens()
        return self.store.corpus_tokens()

    def delete(self, source: str | Sequence[str] | None = None, *, ids: Sequence[str] | None = None) -> int:
        """Delete every chunk of one or more documents (by their ids), or chunks by id. Returns how many."""
        return self.store.delete(ids, source=source)

    # ------------------------------------------------------------------ ingest
    def add_documents(
        self,
        documents: str | Iterable[Any],
        *,
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        batch_size: int = DEFAULT_INGEST_BATCH,
        progress: Callable[[IngestReport], None] | None = None,
    ) -> IngestReport:
        """Clean, split, embed and store documents; safe to run again on the same corpus.

        A document's id (its ``source``) is, in order: ``ids[i]``; the document's own id (``"id"``/``"_id"`` key, or
        ``.id``/``.id_`` attribute); ``metadata["source"]`` (LangChain's loaders set it); else a hash of its text.
        Chunk ids hash (document id, chunk index, chunk text), so ingesting the same corpus twice changes nothing
        and embeds nothing; a document ingested again with changed text gets its new chunks and loses the old ones.
        A document id seen twice in one call keeps its last version.

        Args:
            documents: Strings, dicts (``"text"`` or ``"page_content"``, optional ``"id"`` and ``"metadata"``), or
                objects with ``.page_content`` or ``.text`` and ``.metadata`` (LangChain / LlamaIndex documents).
                A list is checked whole before anything is written; an iterator is streamed.
            ids: Document ids, one per document (only with a list of documents).
            metadatas: Metadata per document, merged over the document's own.
            batch_size: Chunks per embed-and-write step (default 256). Chroma writes are further split to the
                client's maximum batch size.
            progress: Called after each step with the running :class:`IngestReport`.

        Returns:
            An :class:`IngestReport`.

        Raises:
            InputError: on a document without text, a bad id or unsupported metadata (named by position). With a
                list, nothing is written; with an iterator, the documents before it are.
            ConfigError: on a bad ``batch_size``, or ``ids``/``metadatas`` whose length does not match.
            StoreError: if Chroma refuses a write (what was written stays; run again to finish).
        """
        ingestor = Ingestor(
            self.store,
            self.encoder,
            chunk_tokens=self.chunk_tokens,
            chunk_overlap=self.chunk_overlap,
            title_key=self.title_key,
            corpus_tokens=self.corpus_tokens,  # the keyword copy's sum, not a scan of every chunk's metadata
        )
        self._keywords.index()  # open (or build) the keyword side first: each written batch is then applied to it
        report = ingestor.add(documents, ids=ids, metadatas=metadatas, batch_size=batch_size, progress=progress)
        if report.added or report.removed or report.updated:
            self._keywords.after_ingest(self._calibrate)
        return report

    # ------------------------------------------------------------------ keyword index and calibration
    def keyword_index(self) -> LiveKeywordIndex:
        """The collection's BM25 index (:mod:`shortlist.keywords.cache`): opened, or built once, on first use."""
        return self._keywords.index()

    def refresh_keyword_index(self) -> LiveKeywordIndex:
        """Check the keyword index against the collection now and return it.

        Writes through shortlist, by any process, reach it by themselves (within about a second on a Chroma
        server); this also catches writes of plain ``chromadb`` clients, same-id text rewrites included.
        """
        return self._keywords.refresh()

    def _calibrate(self, index: LiveKeywordIndex) -> Calibration:
        guard = getattr(index, "guard", None)  # a background calibration: every step stops when the cache closes
        if guard is not None:
            return calibrate_collection(guard(self.store), guard(self.encoder), index)
        return calibrate_collection(self.store, self.encoder, index)

    def calibration(self) -> Calibration:
        """The hybrid fusion's calibration of this collection (see :mod:`shortlist.fusion`), computed now if stale.

        Stale means missing, or the chunks changed since it was computed reached 10% of the collection
        (:data:`~shortlist.keywords.cache.MATERIAL_CHANGE`). Computing it takes about 100 probes: two small
        embedding batches and 100 searches per side. :meth:`add_documents` calls it when it left the calibration
        stale; writes by other processes get it recomputed in the background. It is kept beside the keyword index,
        so a restart reloads it.
        """
        return self._keywords.calibration(self._calibrate)

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str | Sequence[float] | np.ndarray[Any, Any],
        k: int = DEFAULT_K,
        *,
        min_score: float | None = None,
        min_relevance: float | None = None,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        mode: SearchMode | None = None,
        mmr: bool = False,
        mmr_lambda: float = 0.5,
        fetch_k: int | None = None,
        max_per_source: int | None = None,
        budget: int | None = None,
    ) -> Shortlist:
        """Shortlist the chunks most relevant to ``query``.

        Args:
            query: The question, or a query vector (``dense`` mode only) from the same encoder.
            k: Most hits to return (default 4).
            min_score: Drop hits whose cosine similarity is below this (in [-1, 1]). An empty shortlist means
                "nothing relevant": do not call the LLM.
            min_relevance: Drop hits whose :attr:`~shortlist.types.Hit.relevance` (in [0, 1], calibrated on the
                collection, comparable across languages and modes) is below this; 0.5 is a good start (see
                ``docs/hybrid.md``). Needs the question's text.
            where: Chroma metadata filter, e.g. ``{"lang": "en"}`` or ``{"$and": [{"year": {"$gte": 2020}}, ...]}``.
                ``source`` (document id) and ``chunk`` can be filtered too. A field no chunk has is an error.
            where_document: Chroma document filter, e.g. ``{"$contains": "python"}``.
            mode: ``"hybrid"`` (both, fused by :attr:`fusion`), ``"dense"`` (vectors only) or ``"keyword"``
                (BM25 only). Default (``None``): ``"hybrid"`` for a question, ``"dense"`` for a query vector.
            mmr: Re-rank for diversity by maximal marginal relevance over the stored vectors.
            mmr_lambda: MMR trade-off: 1.0 is pure relevance, 0.0 pure diversity (default 0.5).
            fetch_k: Candidates to draw from each index before threshold, diversity and budget (default ``k``
                when none of those is used, else ``max(4 * k, 20)``; at least ``k``).
            max_per_source: Most hits from one document.
            budget: Most word pieces (model tokens) in the hits' texts: the best hits that fit are kept, in rank
                order; a hit that does not fit is skipped and smaller later ones may still be taken.

        Returns:
            A :class:`~shortlist.types.Shortlist`: hits best first (``score`` is the cosine similarity in every
            mode; hybrid and keyword hits are ordered by their fused or BM25 rank) and figures.

        Raises:
            InputError: on an empty query, a vector of the wrong shape, or a bad filter.
            ConfigError: on a bad option (``k`` < 1, unknown mode, ``mmr_lambda`` outside [0, 1]...).
            EmbeddingModelMismatchError: on a query vector of another dimension.
        """
        options = SearchOptions(  # its fields, in order
            k, min_score, min_relevance, where, where_document, mode, mmr, mmr_lambda, fetch_k, max_per_source, budget
        )
        return self.search_with(query, options)

    def _total(self, text: str) -> int:
        """Chunks in the collection, for a search: the keyword copy's count for a search by text.

        A search by text opens the copy anyway (its hits' relevance is scored there). The copy follows the store
        as keyword search does (at once for this process's writes, within about a second for other processes');
        Chroma's own count is a scan, 0.1 s at 1M chunks after a write. A search by vector asks Chroma (a count at
        most a second old).
        """
        if text:
            return len(self._keywords.index())
        return self.store.count(max_age=_COUNT_MAX_AGE)

    def _warm_up(self, query: Any) -> threading.Thread | None:
        """On the first search by text: open the keyword copy in a thread.

        The search joins it once the question is embedded, so a fresh process loads its encoder (and embeds)
        while the keyword side opens (and Chroma goes on loading its vector index, which the store began at
        open: :meth:`ChunkStore._preload <shortlist.store.ChunkStore._preload>`), instead of one after the other.
        An error there is left to the search itself to raise (it does the same step again).
        """
        if self._warmed or not isinstance(query, str):
            return None
        self._warmed = True

        def work() -> None:
            try:
                self._keywords.index()
            except Exception as exc:  # the search repeats these steps and raises what is wrong
                logger.debug("Warm-up of %s: %s", self.store.name, exc)

        thread = threading.Thread(target=work, name=f"shortlist-warm-up-{self.store.name}", daemon=True)
        thread.start()
        return thread

    def _relevance(
        self, text: str, options: SearchOptions, fusion: Fusion | None
    ) -> tuple[Calibration, Callable[[str, Sequence[str]], Any], pipeline.ScoreIds | None] | None:
        """What the hits' relevance comes from: the calibration in use and the keyword index's scorers."""
        if not text:
            if options.min_relevance is not None:
                msg = "min_relevance needs the question's text (a search by vector has no relevance)."
                raise InputError(msg)
            return None
        if isinstance(fusion, AdaptiveFusion):
            calibration = fusion.calibration()
        else:
            calibration = self._keywords.current_calibration(self._calibrate)
        index = self._keywords.index()
        return calibration, index.score_texts, index.score_ids

    def _warn_empty(self) -> None:
        """Warn once per pre-filter that its collection is empty (a mistyped name?), naming the ones that are not."""
        if not self._warned_empty:
            self._warned_empty = True
            from shortlist._empty import warn_empty_collection

            warn_empty_collection(self.store)

    def search_with(self, query: str | Sequence[float] | np.ndarray[Any, Any], options: SearchOptions) -> Shortlist:
        """:meth:`search` with its options in one :class:`~shortlist.search.options.SearchOptions` value.

        Args:
            query: The question, or a query vector (``dense`` mode only).
            options: The search's options (checked when they were built).

        Returns:
            The :class:`~shortlist.types.Shortlist` (see :meth:`search`).

        Raises:
            InputError: on an empty query, a vector of the wrong shape, or a bad filter.
            EmbeddingModelMismatchError: on a query vector of another dimension.
        """
        started = time.perf_counter()
        timings: dict[str, float] = {}
        options = options.resolved(query_is_text=isinstance(query, str))
        mode = options.mode or "dense"
        store = self.store
        warming = self._warm_up(query)
        try:
            text, qvec = pipeline.query_vector(
                query,
                mode,
                self.encoder.embed_query,
                dimension=store.dimension,
                collection=store.name,
                model_name=store.model_name,
                timings=timings,
            )
        finally:
            if warming is not None:
                warming.join()
        if options.where is not None:
            store.check_where(options.where)
        check_where_document(options.where_document)
        fusion = self.fusion if mode == "hybrid" else None  # the calibration, before the query path runs
        total = self._total(text)
        if total == 0:
            self._warn_empty()
        source = StoreSource(store, self._keywords)
        relevance = self._relevance(text, options, fusion)
        ranked, n_candidates = pipeline.run(
            text, qvec, options, source, fusion=fusion, total=total, timings=timings, relevance=relevance
        )
        return pipeline.to_shortlist(
            text,
            ranked,
            candidates=n_candidates,
            total=total,
            corpus_tokens=self.corpus_tokens(),
            timings=timings,
            started=started,
        )
