"""What one Ray actor of :func:`shortlist.distributed.index` runs: chunk, diff, embed and write a batch of documents.

:class:`IndexWorker` is a plain class (Ray Data builds one per actor and calls it on each batch), so this module
never imports Ray. It runs the stages of :mod:`shortlist.ingest` that ``shortlist index`` runs, in the same order and
with the same functions (:func:`~shortlist.ingest.chunking.chunk_document`, :func:`~shortlist.ingest.diff.dedupe`,
:func:`~shortlist.ingest.diff.plan_writes`, :func:`~shortlist.ingest.diff.stale_ids`), so a chunk has the same id,
text and metadata whichever path wrote it. A batch returns only once its chunks are written: when an actor dies,
Ray runs the batch again, and the diff against the store skips what the first attempt wrote (stable ids).
"""

from __future__ import annotations

import os
import pickle
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from shortlist.config import ENV_ONNX_THREADS
from shortlist.ingest.chunking import chunk_document
from shortlist.ingest.coerce import SourceDocument, coerce_document
from shortlist.ingest.diff import dedupe, plan_writes, stale_ids

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.store import ChunkRecord, ChunkStore

__all__ = ["DOC_COLUMN", "BatchStats", "IndexWorker", "WorkerSpec", "document_rows", "documents_of"]

#: The column of the rows :func:`document_rows` makes: one pickled ``(source, text, metadata)`` per document.
DOC_COLUMN = "_shortlist_document"


@dataclass(frozen=True)
class WorkerSpec:
    """What every actor needs to open its encoder and its store (sent to each actor once).

    Attributes:
        collection: The collection's name.
        host: The Chroma server's host.
        port: Its port.
        model: The model (``None``: the packaged all-MiniLM-L6-v2, or ``SHORTLIST_MODEL`` on the worker).
        backend: ``"onnx"``, ``"onnx-int8"``, ``"torch"`` (``None``: the default, as single-process ingest).
        device: The torch device (``None``: the CPU).
        chunk_tokens: Most word pieces in one chunk.
        chunk_overlap: Word pieces carried over.
        title_key: Metadata key of a document's title (``None``: off).
        write_batch: Chunks per write to the server.
        threads: Inference threads per actor (``0``: the encoder's default).
    """

    collection: str
    host: str
    port: int
    model: str | None
    backend: str | None
    device: str | None
    chunk_tokens: int
    chunk_overlap: int
    title_key: str | None
    write_batch: int
    threads: int = 0


@dataclass(frozen=True)
class BatchStats:
    """What one batch did, and where its time went (one row of the pipeline's output).

    Attributes:
        worker: ``host:pid`` of the actor that ran it.
        documents: Documents in the batch.
        chunks: Their chunks (after removing duplicates).
        added: Chunks embedded and written.
        skipped: Chunks stored already, unchanged.
        updated: Chunks stored already whose metadata was rewritten.
        removed: Stale chunks of re-ingested documents deleted.
        tokens: Word pieces in the batch's chunks.
        chunk_s: Seconds splitting documents into chunks.
        diff_s: Seconds reading which chunks the store holds.
        embed_s: Seconds embedding the new chunks.
        write_s: Seconds writing (new chunks, metadata updates, stale deletes).
    """

    worker: str
    documents: int = 0
    chunks: int = 0
    added: int = 0
    skipped: int = 0
    updated: int = 0
    removed: int = 0
    tokens: int = 0
    chunk_s: float = 0.0
    diff_s: float = 0.0
    embed_s: float = 0.0
    write_s: float = 0.0

    def columns(self) -> dict[str, list[Any]]:
        """The stats as a one-row batch (Ray Data's column format)."""
        return {k: [v] for k, v in asdict(self).items()}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BatchStats:
        """The stats back from a row of the pipeline's output (NumPy scalars turned into Python's)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = row[f.name]
            values[f.name] = (
                str(value) if f.name == "worker" else (float(value) if f.name.endswith("_s") else int(value))
            )
        return cls(**values)


def document_rows(documents: Sequence[SourceDocument]) -> list[dict[str, bytes]]:
    """Rows for a Ray Dataset, one per document, that :func:`documents_of` reads back exactly.

    The metadata travels pickled: an Arrow struct column would merge every document's keys (``None`` where one
    lacks a key) and refuse a key whose value type varies between documents.
    """
    return [{DOC_COLUMN: pickle.dumps((d.source, d.text, dict(d.metadata)))} for d in documents]


def _column(batch: Mapping[str, Any], name: str) -> list[Any]:
    value = batch[name]
    return list(value.tolist() if hasattr(value, "tolist") else value)


def documents_of(batch: Mapping[str, Any]) -> list[SourceDocument]:
    """The documents of one batch: rows of :func:`document_rows`, or a user's rows (``text``, ``id``, ``metadata``).

    A user's row is read as :meth:`Prefilter.add_documents <shortlist.prefilter.Prefilter.add_documents>` reads a
    dict; metadata keys whose value is ``None`` (an Arrow struct's missing keys) are dropped.

    Raises:
        InputError: on a row without text, with a bad id or with metadata Chroma cannot store.
    """
    if DOC_COLUMN in batch:
        out = []
        for blob in _column(batch, DOC_COLUMN):
            source, text, metadata = pickle.loads(blob)  # noqa: S301 - rows this module pickled
            out.append(SourceDocument(source, text, metadata))
        return out
    names = list(batch)
    columns = {name: _column(batch, name) for name in names}
    n = len(columns[names[0]]) if names else 0
    docs = []
    for i in range(n):
        row = {name: columns[name][i] for name in names}
        meta = row.get("metadata")
        if isinstance(meta, Mapping):
            row["metadata"] = {k: v for k, v in meta.items() if v is not None}
        docs.append(coerce_document(row, i))
    return docs


class IndexWorker:
    """One actor's encoder (loaded once) and store client; called by Ray Data on each batch of documents.

    Args:
        spec: The collection, the server and the encoder's and chunking's settings.
    """

    def __init__(self, spec: WorkerSpec) -> None:
        from shortlist.encoder import Encoder
        from shortlist.store import ChunkStore

        if spec.threads > 0:  # one inference thread per CPU the actor holds, not one per core of the machine
            os.environ.setdefault(ENV_ONNX_THREADS, str(spec.threads))
        self.spec = spec
        self.encoder: Encoder = Encoder(spec.model, device=spec.device, backend=spec.backend).load()
        self.store: ChunkStore = ChunkStore(spec.collection, host=spec.host, port=spec.port, encoder=self.encoder)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Index one batch (Ray Data's call): its documents in, one row of :class:`BatchStats` out."""
        return self.index(documents_of(batch)).columns()

    def index(self, documents: Sequence[SourceDocument]) -> BatchStats:
        """Chunk, diff against the store, embed the new chunks and write them; returns what the batch did."""
        spec = self.spec
        t0 = time.perf_counter()
        pending: dict[str, list[ChunkRecord]] = {}
        for doc in documents:  # a document id seen twice in the batch keeps its last version, as ingest does
            pending.pop(doc.source, None)
            pending[doc.source] = chunk_document(
                doc,
                tokenizer=self.encoder.tokenizer,
                chunk_tokens=spec.chunk_tokens,
                chunk_overlap=spec.chunk_overlap,
                title_key=spec.title_key,
            )
        records = dedupe(pending.values())
        t1 = time.perf_counter()
        stored = {c.id: c.metadata for c in self.store.get(list(records), include_text=False)} if records else {}
        plan = plan_writes(records, stored)
        t2 = time.perf_counter()
        t3 = t2
        if plan.new:
            vectors = self.encoder.embed_documents([r.text for r in plan.new])
            t3 = time.perf_counter()
            step = spec.write_batch
            for start in range(0, len(plan.new), step):
                self.store.upsert(plan.new[start : start + step], vectors[start : start + step])
        if plan.changed:
            self.store.update_metadata(plan.changed)
        stale = stale_ids(self.store.ids_of_sources(list(pending)), set(records)) if pending else []
        removed = self.store.delete(stale) if stale else 0
        t4 = time.perf_counter()
        return BatchStats(
            worker=self.worker,
            documents=len(documents),
            chunks=len(records),
            added=len(plan.new),
            skipped=plan.unchanged,
            updated=len(plan.changed),
            removed=removed,
            tokens=sum(r.tokens for r in records.values()),
            chunk_s=t1 - t0,
            diff_s=t2 - t1,
            embed_s=t3 - t2,
            write_s=t4 - t3,
        )
