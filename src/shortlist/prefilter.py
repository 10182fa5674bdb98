"""Prefilter: narrow thousands of chunks to a top-k shortlist before an LLM reads them.

Ingest: documents -> :func:`~shortlist.text.clean_text` -> :func:`~shortlist.text.split_text` (<= ``chunk_tokens``
word pieces, ``chunk_overlap`` carried over) -> :meth:`Encoder.embed_documents <shortlist.encoder.Encoder>` (only
for chunks not stored yet) -> :meth:`ChunkStore.upsert <shortlist.store.ChunkStore.upsert>`.

Search: question -> vector -> Chroma's nearest chunks (with ``where`` / ``where_document`` filters) plus, in hybrid
mode, BM25 candidates, fused by :attr:`Prefilter.fusion` (adaptive by default, see :mod:`shortlist.fusion`)
-> ``min_score`` threshold (cosine) -> cap per document -> MMR
diversity (optional) -> top ``k`` -> token budget (optional) -> :class:`~shortlist.types.Shortlist`.

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

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from shortlist.config import DEFAULT_K, DEFAULT_MODE, SearchMode
from shortlist.errors import ConfigError, InputError
from shortlist.fusion import SEED, AdaptiveFusion, Calibration, calibrate, combine
from shortlist.store import KEY_CHUNK, KEY_SOURCE, KEY_TITLE, ChunkRecord, ChunkStore, StoredChunk, restore_metadata
from shortlist.text import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS, clean_text, split_text
from shortlist.types import Hit, SearchStats, Shortlist

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from shortlist.encoder import Encoder
    from shortlist.keyword import KeywordIndex

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

_MODES = ("dense", "keyword", "hybrid")
DEFAULT_INGEST_BATCH = 256
RRF_K = 60
#: SearchStats.chunks_total may use a collection count this recent (seconds); this process's writes refresh it.
_COUNT_MAX_AGE = 1.0


# ---------------------------------------------------------------------------------------------- fusion
class Fusion(Protocol):
    """How hybrid search merges its two candidate lists.

    Called with the question and both lists, each ``(id, raw score)`` best first (cosine similarity for the dense
    list, BM25 score for the keyword list); returns ``(id, fused score)`` best first. Any id may appear in one list
    only.
    """

    def __call__(
        self, query: str, dense: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]]
    ) -> list[tuple[str, float]]:
        """Fuse the lists."""
        ...


def rrf(
    query: str,
    dense: Sequence[tuple[str, float]],
    keyword: Sequence[tuple[str, float]],
    *,
    k: int = RRF_K,
    weights: tuple[float, float] = (1.0, 1.0),
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``sum(weight / (k + rank))`` over the lists an id is in (ranks from 1).

    Ties are broken by the dense rank, then the keyword rank.

    Args:
        query: The question (unused by plain RRF; adaptive fusions use it).
        dense: ``(id, cosine)`` best first.
        keyword: ``(id, bm25)`` best first.
        k: The RRF constant (60, as in Cormack et al. 2009).
        weights: Weights of the dense and keyword lists.

    Returns:
        ``(id, fused score)``, best first.
    """
    del query

    def parts(ranked: Sequence[tuple[str, float]], weight: float) -> list[tuple[str, float]]:
        # a list of weight 0 is left out entirely (from the scores and from the tie-break)
        return [(id_, weight / (k + rank)) for rank, (id_, _) in enumerate(ranked, start=1)] if weight > 0 else []

    return combine(parts(dense, weights[0]), parts(keyword, weights[1]))


# ---------------------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class IngestReport:
    """What :meth:`Prefilter.add_documents` did.

    Attributes:
        documents: Documents read.
        chunks: Chunks they were split into (after removing duplicates).
        added: Chunks embedded and written (not stored before).
        skipped: Chunks already stored with the same metadata (not embedded again).
        updated: Chunks already stored whose metadata was rewritten (not embedded again).
        removed: Stale chunks of re-ingested documents deleted (their text changed).
        tokens: Word pieces in this call's chunks.
        corpus_tokens: Word pieces in the whole collection afterwards.
        seconds: Wall time.
    """

    documents: int = 0
    chunks: int = 0
    added: int = 0
    skipped: int = 0
    updated: int = 0
    removed: int = 0
    tokens: int = 0
    corpus_tokens: int = 0
    seconds: float = 0.0


@dataclass
class Candidate:
    """A chunk considered by one search (mutable scratch data, not part of the answer).

    Attributes:
        chunk: The stored chunk.
        cosine: Cosine similarity to the query (``None`` until computed).
        keyword: BM25 score (``None`` if not a keyword candidate).
        fused: Score used for ordering (cosine, BM25 or the fused score, by mode).
    """

    chunk: StoredChunk
    cosine: float | None = None
    keyword: float | None = None
    fused: float = 0.0
    embedding: np.ndarray[Any, np.dtype[np.float32]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Doc:
    source: str
    text: str
    metadata: Mapping[str, Any]


# ---------------------------------------------------------------------------------------------- the prefilter
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
            calibrated from the collection's own chunks, by query script); :func:`rrf` is the fixed-weight classic.
        title_key: Metadata key of a document's title (default ``"title"``; ``None``: off). A document that has one
            gets it at the head of **every** chunk (title, line break, chunk text), not only the first, so a chunk
            cut from the middle still says what it is about: to the dense side, to BM25 and to the LLM that reads
            it (LlamaIndex likewise embeds a node's metadata with its text). The title counts against
            ``chunk_tokens``; a title longer than a third of ``chunk_tokens`` is left at the start of the document
            only. On SciFact this lifts hybrid nDCG@10 by about 0.015 (``benchmarks/hybrid.py``).

    Raises:
        ConfigError: on bad chunk sizes or conflicting locations.
        EmbeddingModelMismatchError: if the collection holds another model's vectors.
        StoreError: if Chroma cannot be opened.

    The keyword index (hybrid and keyword modes) is built from the collection's own chunks on the first keyword
    search, never fed separately, so it cannot hold a chunk the collection does not have. Before a keyword search,
    if the collection's size changed or this object wrote to it, the hash of the collection's ids is compared with
    the index's and the index rebuilt when they differ. An embedded store also saves the index beside the Chroma
    files (``<path>/shortlist-keyword/<collection>/``) and reloads it after a restart when the ids hash still
    matches; a server-backed or in-memory store rebuilds it from the collection on first use (the index cannot
    sit beside a server's database). Writes by other processes that keep the count unchanged are noticed at the
    next restart, or with :meth:`refresh_keyword_index`.
    """

    def __init__(
        self,
        collection: str = "shortlist",
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
        if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 8:
            msg = f"chunk_tokens must be an int >= 8, got {chunk_tokens!r}."
            raise ConfigError(msg)
        if chunk_tokens > encoder.max_text_tokens:
            msg = (
                f"chunk_tokens={chunk_tokens} is over the model's window ({encoder.max_text_tokens} word pieces): "
                "chunks would be cut. Use a smaller value."
            )
            raise ConfigError(msg)
        if not isinstance(chunk_overlap, int) or not 0 <= chunk_overlap < chunk_tokens:
            msg = f"chunk_overlap must be an int in [0, chunk_tokens), got {chunk_overlap!r}."
            raise ConfigError(msg)
        if title_key is not None and (not isinstance(title_key, str) or not title_key):
            msg = f"title_key must be a metadata key (a non-empty str) or None, got {title_key!r}."
            raise ConfigError(msg)
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.title_key = title_key
        if fusion is None:
            fusion = AdaptiveFusion(self.calibration)
        self.fusion: Fusion = fusion
        self.store = (
            store
            if store is not None
            else ChunkStore(collection, path=path, host=host, port=port, client=client, encoder=encoder)
        )
        self._kw_lock = threading.Lock()
        self._kw: KeywordIndex | None = None
        self._kw_quick = ""
        self._generation = 0
        self._cal_lock = threading.Lock()
        self._cal: Calibration | None = None

    @classmethod
    def in_memory(cls, collection: str = "shortlist", encoder: Encoder | None = None, **kw: Any) -> Prefilter:
        """A pre-filter over a private in-memory Chroma database (for tests and notebooks)."""
        if encoder is None:
            from shortlist.encoder import Encoder

            encoder = Encoder.shared()
        store = ChunkStore.in_memory(collection, encoder=encoder)
        return cls(collection, encoder=encoder, store=store, **kw)

    def __repr__(self) -> str:
        return f"Prefilter({self.store!r}, chunk_tokens={self.chunk_tokens}, chunk_overlap={self.chunk_overlap})"

    # ------------------------------------------------------------------ small API
    def count(self) -> int:
        """Chunks in the collection."""
        return self.store.count()

    def __len__(self) -> int:
        return self.count()

    def corpus_tokens(self) -> int:
        """Word pieces in all chunks of the collection."""
        return self.store.corpus_tokens()

    def delete(self, source: str | Sequence[str] | None = None, *, ids: Sequence[str] | None = None) -> int:
        """Delete every chunk of one or more documents (by their ids), or chunks by id. Returns how many."""
        n = self.store.delete(ids, source=source)
        if n:
            self._touch()
        return n

    def _touch(self) -> None:
        with self._kw_lock:
            self._generation += 1

    # ------------------------------------------------------------------ ingest
    def _normalise(self, doc: Any, i: int, ids: Sequence[str] | None, metas: Sequence[Any] | None) -> _Doc:
        where = f"documents[{i}]"
        doc_id: Any = None
        meta: Any = None
        if isinstance(doc, str):
            text: Any = doc
        elif isinstance(doc, Mapping):
            text = next((doc[k] for k in ("text", "page_content", "content") if doc.get(k) is not None), None)
            doc_id = next((doc[k] for k in ("id", "_id", "doc_id") if doc.get(k) is not None), None)
            meta = doc.get("metadata")
        else:
            text = getattr(doc, "page_content", None)
            if text is None:
                text = getattr(doc, "text", None)
            for attr in ("id", "id_", "doc_id"):
                value = getattr(doc, attr, None)
                if isinstance(value, str) and value:
                    doc_id = value
                    break
            meta = getattr(doc, "metadata", None)
            if text is None and meta is None:
                msg = (
                    f"{where} is a {type(doc).__name__}: give a str, a dict with 'text' or 'page_content', or an "
                    "object with .page_content or .text (a LangChain or LlamaIndex Document)."
                )
                raise InputError(msg)
        if not isinstance(text, str):
            msg = f"{where} has no text (got {type(text).__name__}); give its text as a str."
            raise InputError(msg)
        if meta is not None and not isinstance(meta, Mapping):
            msg = f"{where}.metadata must be a dict, got {type(meta).__name__}."
            raise InputError(msg)
        merged = dict(meta or {})
        if metas is not None:
            extra = metas[i]
            if extra is not None and not isinstance(extra, Mapping):
                msg = f"metadatas[{i}] must be a dict or None, got {type(extra).__name__}."
                raise InputError(msg)
            merged.update(extra or {})
        if ids is not None:
            doc_id = ids[i]
        if doc_id is not None and (not isinstance(doc_id, str | int) or isinstance(doc_id, bool) or doc_id == ""):
            msg = f"The id of {where} must be a non-empty str, got {doc_id!r}."
            raise InputError(msg)
        cleaned = clean_text(text)
        if not cleaned:
            msg = f"{where} is empty after cleaning: drop it (nothing was written for it)."
            raise InputError(msg)
        if doc_id is None:
            src = merged.get(KEY_SOURCE)
            doc_id = src if isinstance(src, str) and src else "doc-" + hashlib.sha256(cleaned.encode()).hexdigest()[:20]
        from shortlist.store import sanitize_metadata

        sanitize_metadata(
            {k: v for k, v in merged.items() if k not in (KEY_SOURCE, KEY_CHUNK)}, where=f"{where}.metadata"
        )
        return _Doc(str(doc_id), cleaned, merged)

    def _chunk(self, doc: _Doc) -> list[ChunkRecord]:
        tok = self.encoder.tokenizer
        (title, title_tokens), body = self._title(doc), doc.text
        budget, overlap = self.chunk_tokens, self.chunk_overlap
        if title:
            body = _without_leading_title(body, title)
            budget -= title_tokens
            overlap = min(overlap, budget // 2)  # the title took part of the chunk: keep the overlap below half
        pieces = split_text(body, budget, overlap, tokenizer=tok)
        if title:
            pieces = [f"{title}\n{p}" for p in pieces] or [title]
        counts = [len(e.ids) for e in tok.encode_batch(pieces, add_special_tokens=False)] if pieces else []
        return [
            ChunkRecord(source=doc.source, chunk=i, text=p, tokens=n, metadata=doc.metadata)
            for i, (p, n) in enumerate(zip(pieces, counts, strict=True))
        ]

    def _title(self, doc: _Doc) -> tuple[str, int]:
        """The title to head each chunk of ``doc`` with and its word pieces, or ("", 0): none, or too long."""
        value = doc.metadata.get(self.title_key) if self.title_key else None
        if not isinstance(value, str):
            return "", 0
        title = " ".join(clean_text(value).split())
        tokens = len(self.encoder.tokenizer.encode(title, add_special_tokens=False).ids) if title else 0
        return (title, tokens) if 0 < tokens <= self.chunk_tokens // 3 else ("", 0)

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
        start = time.perf_counter()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"batch_size must be a positive int, got {batch_size!r}."
            raise ConfigError(msg)
        if isinstance(documents, str | bytes) or isinstance(documents, Mapping):
            documents = [documents]
        docs_iter: Iterator[_Doc]
        if isinstance(documents, Sequence):
            for name, seq in (("ids", ids), ("metadatas", metadatas)):
                if seq is not None and len(seq) != len(documents):
                    msg = f"{name} has {len(seq)} entries for {len(documents)} documents."
                    raise ConfigError(msg)
            normalised = [self._normalise(d, i, ids, metadatas) for i, d in enumerate(documents)]
            latest = {d.source: i for i, d in enumerate(normalised)}
            if len(latest) < len(normalised):
                logger.warning("%d documents repeat an id; the last of each is kept.", len(normalised) - len(latest))
            docs_iter = iter([d for i, d in enumerate(normalised) if latest[d.source] == i])
        else:
            if ids is not None or metadatas is not None:
                msg = "ids and metadatas need a list of documents; with an iterator, put them in each document."
                raise ConfigError(msg)
            docs_iter = (self._normalise(d, i, None, None) for i, d in enumerate(documents))

        report = IngestReport()
        pending: dict[str, list[ChunkRecord]] = {}
        n_pending = 0
        try:
            for doc in docs_iter:
                records = self._chunk(doc)
                report = replace(report, documents=report.documents + 1)
                if doc.source in pending:
                    n_pending -= len(pending.pop(doc.source))
                pending[doc.source] = records
                n_pending += len(records)
                if n_pending >= batch_size:
                    report = self._flush(pending, report, start)
                    pending, n_pending = {}, 0
                    if progress is not None:
                        progress(report)
            if pending:
                report = self._flush(pending, report, start)
                if progress is not None:
                    progress(report)
        finally:
            if report.added or report.removed or report.updated:
                self._touch()
        return replace(report, corpus_tokens=self.store.corpus_tokens(), seconds=time.perf_counter() - start)

    def _flush(self, pending: Mapping[str, list[ChunkRecord]], report: IngestReport, start: float) -> IngestReport:
        records: dict[str, ChunkRecord] = {}
        for recs in pending.values():
            for rec in recs:
                records[rec.id] = rec  # identical (source, index, text) twice: written once
        stored = {c.id: c for c in self.store.get(list(records), include_text=False)}
        new = [r for r in records.values() if r.id not in stored]
        changed = [
            r
            for r in records.values()
            if r.id in stored and dict(stored[r.id].metadata) != restore_metadata(r.chroma_metadata())
        ]
        if new:
            vectors = self.encoder.embed_documents([r.text for r in new])
            self.store.upsert(new, vectors)
        if changed:
            self.store.update_metadata(changed)
        # Chunks of these documents that the new versions no longer have (their text changed): remove them.
        keep = set(records)
        stale = self.store.ids_of_sources(list(pending)) - keep
        removed = self.store.delete(sorted(stale)) if stale else 0
        return replace(
            report,
            chunks=report.chunks + len(records),
            added=report.added + len(new),
            skipped=report.skipped + len(records) - len(new) - len(changed),
            updated=report.updated + len(changed),
            removed=report.removed + removed,
            tokens=report.tokens + sum(r.tokens for r in records.values()),
            corpus_tokens=self.store.corpus_tokens(),
            seconds=time.perf_counter() - start,
        )

    # ------------------------------------------------------------------ keyword index
    def keyword_index(self) -> KeywordIndex:
        """The BM25 index over the collection, (re)built if the collection changed since it was built."""
        from shortlist.keyword import KeywordIndex

        with self._kw_lock:
            quick = f"{self.store.count()}:{self._generation}"  # fresh: another writer may have added chunks
            if self._kw is not None and self._kw_quick == quick:
                return self._kw
            # Something changed (or first use): the ids hash says whether the index still matches the collection.
            ids = self._all_ids()
            from shortlist.keyword import INDEX_VERSION

            digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
            fingerprint = f"{INDEX_VERSION}:{digest}"
            folder = self._keyword_folder()
            if self._kw is None or self._kw.fingerprint != fingerprint:
                cached = KeywordIndex.load(folder) if folder is not None else None
                if cached is not None and cached.fingerprint == fingerprint:
                    self._kw = cached
                    logger.info("Loaded the keyword index of %d chunks from %s", len(cached), folder)
                else:
                    t = time.perf_counter()
                    items = ((c.id, c.text) for batch in self.store.iter_chunks() for c in batch)
                    self._kw = KeywordIndex.build(items, fingerprint=fingerprint)
                    logger.info("Built the keyword index of %d chunks in %.2fs", len(self._kw), time.perf_counter() - t)
                    if folder is not None:
                        try:
                            self._kw.save(folder)
                        except OSError as exc:  # a read-only folder: keep the index in memory only
                            logger.warning("Could not save the keyword index to %s: %s", folder, exc)
            self._kw_quick = quick
            return self._kw

    def refresh_keyword_index(self) -> KeywordIndex:
        """Check the keyword index against the collection now (after writes by another process) and return it."""
        with self._kw_lock:
            self._kw_quick = ""
        return self.keyword_index()

    def calibration(self) -> Calibration:
        """The hybrid fusion's calibration of this collection (see :mod:`shortlist.fusion`), computed if stale.

        It belongs to the keyword index's fingerprint (the collection's ids): when documents are added or removed,
        the next call computes it again (about 100 probes: two small embedding batches and 100 searches per side).
        An embedded store keeps it beside the keyword index, so a restart reloads it instead. Call it after ingest
        to pay that cost then rather than on the first hybrid search.
        """
        index = self.keyword_index()
        with self._cal_lock:
            if self._cal is not None and self._cal.fingerprint == index.fingerprint:
                return self._cal
            folder = self._keyword_folder()
            cached = Calibration.load(folder) if folder is not None else None
            if cached is not None and cached.fingerprint == index.fingerprint:
                self._cal = cached
                return cached
            cal = calibrate(
                self._probe_pool(index.ids),
                index,
                self.encoder,
                lambda vec, n: [(c.id, float(c.score or 0.0)) for c in self.store.query(vec, n)],
                fingerprint=index.fingerprint,
            )
            if folder is not None and folder.is_dir():
                try:
                    cal.save(folder)
                except OSError as exc:
                    logger.warning("Could not save the hybrid calibration to %s: %s", folder, exc)
            self._cal = cal
            return cal

    def _probe_pool(self, ids: Sequence[str], size: int = 2000) -> list[tuple[str, str, str]]:
        """``(id, source, text)`` of up to ``size`` chunks drawn with a fixed seed (the calibration's probe pool)."""
        order = sorted(ids)
        rng = np.random.default_rng(SEED)
        rng.shuffle(order)
        return [(c.id, c.source, c.text) for c in self.store.get(order[:size])]

    def _all_ids(self) -> list[str]:
        out: list[str] = []
        offset, page = 0, 20_000
        while True:
            res = self.store._get(include=[], limit=page, offset=offset)
            out.extend(res["ids"])
            if len(res["ids"]) < page:
                return out
            offset += page

    def _keyword_folder(self) -> Path | None:
        """Where an embedded store keeps its keyword index: beside the Chroma folder's files, per collection."""
        if self.store.path is None:
            return None
        return self.store.path / "shortlist-keyword" / self.store.name

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str | Sequence[float] | np.ndarray[Any, Any],
        k: int = DEFAULT_K,
        *,
        min_score: float | None = None,
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
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        if mode is None:
            mode = DEFAULT_MODE if isinstance(query, str) else "dense"
        self._check_options(k, mode, mmr_lambda, fetch_k, max_per_source, budget, min_score)
        text, qvec = self._query_vector(query, mode, timings)
        if where is not None:
            self.store.check_where(where)
        if where_document is not None and (not isinstance(where_document, Mapping) or not where_document):
            msg = f"where_document must be a non-empty dict like {{'$contains': 'word'}}, got {where_document!r}."
            raise InputError(msg)
        pooled = mmr or max_per_source is not None or budget is not None or min_score is not None or mode == "hybrid"
        fetch = max(k, fetch_k if fetch_k is not None else (max(4 * k, 20) if pooled else k))

        total = self.store.count(max_age=_COUNT_MAX_AGE)
        ranked: list[Candidate] = []
        while True:
            ranked, n_candidates, saturated = self._gather(text, qvec, fetch, mode, where, where_document, mmr, timings)
            if min_score is not None:
                ranked = [c for c in ranked if (c.cosine if c.cosine is not None else -1.0) >= min_score]
            if max_per_source is not None:
                ranked = _cap_per_source(ranked, max_per_source)
                # Too few distinct documents in the pool: widen it (x4) while the indexes have more to give.
                if len(ranked) < k and saturated and fetch < total:
                    fetch = min(fetch * 4, total)
                    continue
            break
        if mmr and len(ranked) > 1:
            t = time.perf_counter()
            ranked = self._mmr(ranked, qvec, k, mmr_lambda, mode)
            timings["mmr"] = _ms(t)
        ranked = ranked[:k]
        if budget is not None:
            kept: list[Candidate] = []
            used = 0
            for cand in ranked:
                if used + cand.chunk.tokens <= budget:
                    kept.append(cand)
                    used += cand.chunk.tokens
            ranked = kept

        hits = tuple(
            Hit(id=c.chunk.id, text=c.chunk.text, score=float(c.cosine or 0.0), metadata=c.chunk.metadata, rank=i)
            for i, c in enumerate(ranked, start=1)
        )
        timings["total"] = _ms(t_start)
        stats = SearchStats(
            chunks_total=total,
            candidates=n_candidates,
            corpus_tokens=self.store.corpus_tokens(),
            kept_tokens=sum(c.chunk.tokens for c in ranked),
            timings_ms=timings,
        )
        return Shortlist(query=text, hits=hits, stats=stats)

    def _gather(
        self,
        text: str,
        qvec: np.ndarray[Any, np.dtype[np.float32]],
        fetch: int,
        mode: str,
        where: Mapping[str, Any] | None,
        where_document: Mapping[str, Any] | None,
        with_vectors: bool,
        timings: dict[str, float],
    ) -> tuple[list[Candidate], int, bool]:
        """Candidates in search order, how many were looked at, and whether an index had more to give."""
        cands: dict[str, Candidate] = {}
        dense: list[tuple[str, float]] = []
        keyword: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            t = time.perf_counter()
            found = self.store.query(
                qvec, fetch, where=where, where_document=where_document, include_embeddings=with_vectors
            )
            for c in found:
                cands[c.id] = Candidate(c, cosine=c.score, embedding=c.embedding)
                dense.append((c.id, float(c.score or 0.0)))
            timings["vector"] = timings.get("vector", 0.0) + _ms(t)
        if mode in ("keyword", "hybrid"):
            t = time.perf_counter()
            keyword = self._keyword_candidates(text, fetch, where, where_document)
            timings["keyword"] = timings.get("keyword", 0.0) + _ms(t)
        if mode == "hybrid":
            t = time.perf_counter()
            order = self.fusion(text, dense, keyword)
            timings["fuse"] = timings.get("fuse", 0.0) + _ms(t)
        else:
            order = dense if mode == "dense" else keyword
        kw_scores = dict(keyword)
        missing = [i for i, _ in order if i not in cands]
        if missing:
            t = time.perf_counter()
            for c in self.store.get(missing, include_embeddings=True):
                emb = c.embedding
                cos = float(np.dot(emb, qvec)) if emb is not None else 0.0
                cands[c.id] = Candidate(c, cosine=cos, embedding=emb)
            timings["fetch"] = timings.get("fetch", 0.0) + _ms(t)
        ranked: list[Candidate] = []
        for id_, score in order:
            cand = cands.get(id_)
            if cand is None:  # deleted between the two reads
                continue
            cand.fused = float(score)
            cand.keyword = kw_scores.get(id_)
            ranked.append(cand)
        saturated = len(dense) >= fetch or len(keyword) >= fetch
        return ranked, len(cands), saturated

    def _check_options(
        self,
        k: int,
        mode: str,
        mmr_lambda: float,
        fetch_k: int | None,
        max_per_source: int | None,
        budget: int | None,
        min_score: float | None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            msg = f"k must be a positive int, got {k!r}."
            raise ConfigError(msg)
        if mode not in _MODES:
            msg = f"mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}."
            raise ConfigError(msg)
        if not isinstance(mmr_lambda, float | int) or not 0.0 <= float(mmr_lambda) <= 1.0:
            msg = f"mmr_lambda must be in [0, 1], got {mmr_lambda!r}."
            raise ConfigError(msg)
        for name, value in (("fetch_k", fetch_k), ("max_per_source", max_per_source)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                msg = f"{name} must be a positive int or None, got {value!r}."
                raise ConfigError(msg)
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            msg = f"budget must be a non-negative int (model tokens) or None, got {budget!r}."
            raise ConfigError(msg)
        if min_score is not None and (not isinstance(min_score, float | int) or math.isnan(float(min_score))):
            msg = f"min_score must be a number in [-1, 1] or None, got {min_score!r}."
            raise ConfigError(msg)

    def _query_vector(
        self, query: Any, mode: str, timings: dict[str, float]
    ) -> tuple[str, np.ndarray[Any, np.dtype[np.float32]]]:
        t = time.perf_counter()
        if isinstance(query, str):
            if not clean_text(query):
                msg = "The query is empty: ask a question (an empty query would match everything a little)."
                raise InputError(msg)
            vec = self.encoder.embed_query(query)
            timings["embed"] = _ms(t)
            return query, vec
        if isinstance(query, np.ndarray | list | tuple) and not (isinstance(query, list | tuple) and not query):
            if mode != "dense":
                msg = f"A query vector works in 'dense' mode only; {mode!r} needs the question's text."
                raise InputError(msg)
            try:
                vec = np.asarray(query, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                msg = f"The query vector must hold numbers: {exc}"
                raise InputError(msg) from exc
            if vec.ndim != 1:
                msg = f"The query vector must be 1-D, got shape {vec.shape}."
                raise InputError(msg)
            if vec.shape[0] != self.store.dimension:
                from shortlist.errors import EmbeddingModelMismatchError

                msg = (
                    f"The query vector has {vec.shape[0]} dimensions; collection {self.store.name!r} holds "
                    f"{self.store.dimension}-dimensional vectors of {self.store.model_name!r}."
                )
                raise EmbeddingModelMismatchError(msg)
            norm = float(np.linalg.norm(vec))
            if not math.isfinite(norm) or norm == 0.0:
                msg = "The query vector is zero or not finite."
                raise InputError(msg)
            return "", (vec / norm).astype(np.float32)
        msg = f"query must be a non-empty str (or a vector in dense mode), got {type(query).__name__}."
        raise InputError(msg)

    def _keyword_candidates(
        self, text: str, fetch: int, where: Mapping[str, Any] | None, where_document: Mapping[str, Any] | None
    ) -> list[tuple[str, float]]:
        index = self.keyword_index()
        if where is None and where_document is None:
            return index.search(text, fetch)
        # Filtered: rank by BM25 among the chunks the filters let through (exact, not post-filtered).
        allowed = self._matching_ids(where, where_document)
        return index.search(text, fetch, allowed=allowed)

    def _matching_ids(self, where: Mapping[str, Any] | None, where_document: Mapping[str, Any] | None) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 2000
        while True:
            res = self.store._get(
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,
                include=[],
                limit=page,
                offset=offset,
            )
            out.update(res["ids"])
            if len(res["ids"]) < page:
                return out
            offset += page

    def _mmr(
        self,
        ranked: list[Candidate],
        qvec: np.ndarray[Any, np.dtype[np.float32]],
        k: int,
        lam: float,
        mode: str,
    ) -> list[Candidate]:
        missing = [c.chunk.id for c in ranked if c.embedding is None]
        if missing:
            got = {c.id: c.embedding for c in self.store.get(missing, include_text=False, include_embeddings=True)}
            for c in ranked:
                if c.embedding is None:
                    c.embedding = got.get(c.chunk.id)
        usable = [c for c in ranked if c.embedding is not None]
        vecs = np.stack([np.asarray(c.embedding, dtype=np.float32) for c in usable])
        if mode == "dense":
            rel = vecs @ qvec
        else:  # the fused (or BM25) order's scores, scaled to [0, 1], so MMR keeps the keyword signal
            fused = np.asarray([c.fused for c in usable], dtype=np.float32)
            lo, hi = float(fused.min()), float(fused.max())
            rel = (fused - lo) / (hi - lo) if hi > lo else np.ones_like(fused)
        sims = vecs @ vecs.T
        chosen: list[int] = []
        left = list(range(len(usable)))
        while left and len(chosen) < k:
            if chosen:
                redundancy = sims[np.ix_(left, chosen)].max(axis=1)
            else:
                redundancy = np.zeros(len(left), dtype=np.float32)
            score = lam * rel[left] - (1.0 - lam) * redundancy
            best = left[int(np.argmax(score))]
            chosen.append(best)
            left.remove(best)
        return [usable[i] for i in chosen]


def _without_leading_title(body: str, title: str) -> str:
    """``body`` without ``title`` at its start (white space may differ), unless a word goes on after it.

    "json.loads(s)" under the title "json.loads" loses the title; "JSONDecoder" under "JSON" keeps all its letters.
    """
    pattern = r"\s*" + r"\s+".join(re.escape(word) for word in title.split()) + r"(?!\w)"
    match = re.match(pattern, body)
    return body[match.end() :].lstrip() if match else body


def _cap_per_source(ranked: list[Candidate], cap: int) -> list[Candidate]:
    seen: dict[str, int] = {}
    out: list[Candidate] = []
    for cand in ranked:
        src = cand.chunk.source
        if seen.get(src, 0) < cap:
            seen[src] = seen.get(src, 0) + 1
            out.append(cand)
    return out


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
