"""Ingest, third stage: which chunks are new, which only changed metadata, which stayed, and which are stale.

Plain set work over ids and metadata; the store is read by the caller (:mod:`shortlist.ingest.pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from shortlist.store import ChunkRecord, restore_metadata

__all__ = ["WritePlan", "dedupe", "plan_writes", "stale_ids"]


@dataclass(frozen=True)
class WritePlan:
    """What a batch of chunks needs.

    Attributes:
        new: Chunks not stored yet: to embed and write.
        changed: Chunks stored with other metadata: to rewrite their metadata (not embedded again).
        unchanged: How many chunks are stored as they are (nothing to do).
    """

    new: list[ChunkRecord] = field(default_factory=list)
    changed: list[ChunkRecord] = field(default_factory=list)
    unchanged: int = 0


def dedupe(batches: Iterable[Iterable[ChunkRecord]]) -> dict[str, ChunkRecord]:
    """The chunks by id, in order; an identical (source, index, text) seen twice is kept once (the last)."""
    records: dict[str, ChunkRecord] = {}
    for batch in batches:
        for rec in batch:
            records[rec.id] = rec
    return records


def plan_writes(records: Mapping[str, ChunkRecord], stored: Mapping[str, Mapping[str, Any]]) -> WritePlan:
    """Compare chunks with what the store holds.

    Args:
        records: The chunks to ingest, by id.
        stored: The metadata (as read back, restored) of those ids the store already holds.

    Returns:
        The :class:`WritePlan`: new ids, ids whose metadata would change, and the count of the rest.
    """
    new = [r for r in records.values() if r.id not in stored]
    changed = [
        r for r in records.values() if r.id in stored and dict(stored[r.id]) != restore_metadata(r.chroma_metadata())
    ]
    return WritePlan(new, changed, len(records) - len(new) - len(changed))


def stale_ids(stored_of_sources: Set[str], keep: Set[str]) -> list[str]:
    """Ids of the re-ingested documents' stored chunks that the new versions no longer have, sorted."""
    return sorted(stored_of_sources - keep)
