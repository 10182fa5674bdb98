"""The ingest path, stage by stage.

Coerce documents -> chunk (titles) -> diff against the store -> embed the new chunks -> write ->
:class:`~shortlist.ingest.report.IngestReport`.

:class:`Ingestor` runs the stages of :mod:`.coerce`, :mod:`.chunking` and :mod:`.diff` over batches of documents,
and is the only part of ingest that reads or writes the store or runs the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shortlist.errors import ConfigError
from shortlist.ingest.chunking import chunk_document
from shortlist.ingest.coerce import coerce_documents
from shortlist.ingest.diff import dedupe, plan_writes, stale_ids
from shortlist.ingest.report import IngestReport

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.store import ChunkRecord, ChunkStore

__all__ = ["DEFAULT_INGEST_BATCH", "Ingestor"]

logger = logging.getLogger(__name__)

#: Chunks per embed-and-write step.
DEFAULT_INGEST_BATCH = 256


class Ingestor:
    """Ingest into one collection with one encoder and one chunking.

    Args:
        store: The collection.
        encoder: The encoder that embeds new chunks (its tokenizer sizes them).
        chunk_tokens: Most word pieces in one chunk.
        chunk_overlap: Word pieces carried from one chunk to the next.
        title_key: Metadata key of a document's title (``None``: off).
        corpus_tokens: The collection's word pieces, for the report (a pre-filter gives its keyword copy's sum);
            ``None``: the store's :meth:`~shortlist.store.ChunkStore.corpus_tokens` (a scan of every chunk the
            first time).

    The keyword index hears of the writes from the store itself (its change listeners and journal), so nothing here
    tells it.
    """

    def __init__(
        self,
        store: ChunkStore,
        encoder: Encoder,
        *,
        chunk_tokens: int,
        chunk_overlap: int,
        title_key: str | None,
        corpus_tokens: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.encoder = encoder
        #: The collection's word pieces for the report (the store's tally, read once by a scan, when not given).
        self.corpus_tokens = corpus_tokens if corpus_tokens is not None else store.corpus_tokens
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.title_key = title_key

    def add(
        self,
        documents: str | Iterable[Any],
        *,
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        batch_size: int = DEFAULT_INGEST_BATCH,
        progress: Callable[[IngestReport], None] | None = None,
    ) -> IngestReport:
        """Clean, split, embed and store documents; returns the :class:`IngestReport`.

        :meth:`Prefilter.add_documents <shortlist.prefilter.Prefilter.add_documents>` documents the arguments.
        """
        start = time.perf_counter()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"batch_size must be a positive int, got {batch_size!r}."
            raise ConfigError(msg)
        docs = coerce_documents(documents, ids=ids, metadatas=metadatas)
        report = IngestReport()
        pending: dict[str, list[ChunkRecord]] = {}
        n_pending = 0
        for doc in docs:
            records = chunk_document(
                doc,
                tokenizer=self.encoder.tokenizer,
                chunk_tokens=self.chunk_tokens,
                chunk_overlap=self.chunk_overlap,
                title_key=self.title_key,
            )
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
        return replace(report, corpus_tokens=self.corpus_tokens(), seconds=time.perf_counter() - start)

    def _flush(self, pending: Mapping[str, list[ChunkRecord]], report: IngestReport, start: float) -> IngestReport:
        """Diff one batch against the store, embed and write the new chunks, drop the stale ones."""
        records = dedupe(pending.values())
        stored = {c.id: c.metadata for c in self.store.get(list(records), include_text=False)}
        plan = plan_writes(records, stored)
        if plan.new:
            vectors = self.encoder.embed_documents([r.text for r in plan.new])
            self.store.upsert(plan.new, vectors)
        if plan.changed:
            self.store.update_metadata(plan.changed)
        # Chunks of these documents that the new versions no longer have (their text changed): remove them.
        stale = stale_ids(self.store.ids_of_sources(list(pending)), set(records))
        removed = self.store.delete(stale) if stale else 0
        return replace(
            report,
            chunks=report.chunks + len(records),
            added=report.added + len(plan.new),
            skipped=report.skipped + plan.unchanged,
            updated=report.updated + len(plan.changed),
            removed=report.removed + removed,
            tokens=report.tokens + sum(r.tokens for r in records.values()),
            corpus_tokens=self.corpus_tokens(),
            seconds=time.perf_counter() - start,
        )
