"""What one ingest did: :class:`IngestReport`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IngestReport"]


@dataclass(frozen=True)
class IngestReport:
    """What :meth:`Prefilter.add_documents <shortlist.prefilter.Prefilter.add_documents>` did.

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
