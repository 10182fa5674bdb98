"""Core data: a :class:`Hit` (one shortlisted chunk) and a :class:`Shortlist` (the hits plus figures).

Scores are cosine similarities of L2-normalised vectors, in [-1, 1], everywhere: in the store, the pre-filter and
both framework adapters. In hybrid mode the hits are ordered by the fused rank and ``score`` is still the cosine
similarity (``None`` only for a keyword-only hit whose vector was not compared).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shortlist.errors import InputError

__all__ = ["Hit", "SearchStats", "Shortlist"]


@dataclass(frozen=True)
class Hit:
    """One chunk in a shortlist.

    Attributes:
        id: The chunk's stable id in the store.
        text: The chunk's text.
        score: Cosine similarity to the query, in [-1, 1].
        metadata: The chunk's metadata as given at ingest, plus the keys shortlist adds (see
            :mod:`shortlist.store`).
        rank: 1-based position in the shortlist.
        tokens: Word pieces in ``text`` as counted at ingest (``None`` when unknown). Not part of the hit's
            equality, repr or :meth:`to_dict`.
        relevance: How likely a hit with this evidence is the right one, in [0, 1], from the collection's own
            calibration (see :mod:`shortlist.search.fusion` and ``docs/hybrid.md``): comparable across languages and
            modes, unlike ``score``. ``None`` for a search by vector. Not part of the hit's equality.
    """

    id: str
    text: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    rank: int = 1
    tokens: int | None = field(default=None, compare=False, repr=False)
    relevance: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            msg = f"Hit.id must be a non-empty str, got {self.id!r}."
            raise InputError(msg)
        if not isinstance(self.score, float | int) or math.isnan(self.score):
            msg = f"Hit.score must be a number, got {self.score!r}."
            raise InputError(msg)
        rel = self.relevance
        if rel is not None and (not isinstance(rel, float | int) or not 0.0 <= float(rel) <= 1.0):
            msg = f"Hit.relevance must be in [0, 1] or None, got {rel!r}."
            raise InputError(msg)
        if self.rank < 1:
            msg = f"Hit.rank is 1-based, got {self.rank}."
            raise InputError(msg)

    def to_dict(self) -> dict[str, Any]:
        """The hit as plain JSON-ready data: rank, id, score and relevance (6 decimals), source, text, metadata."""
        return {
            "rank": self.rank,
            "id": self.id,
            "score": None if self.score is None else round(float(self.score), 6),
            "relevance": None if self.relevance is None else round(float(self.relevance), 6),
            "source": str(self.metadata.get("source", self.id)),
            "text": self.text,
            "metadata": dict(self.metadata.items()),
        }


@dataclass(frozen=True)
class SearchStats:
    """Figures about one search.

    Attributes:
        chunks_total: Chunks in the collection (or matching the filter, when the store can tell).
        candidates: Chunks the search looked at before thresholding, diversity and budget.
        corpus_tokens: Tokens (model word pieces) in the whole collection.
        kept_tokens: Tokens in the shortlist's texts.
        timings_ms: Milliseconds per stage (``embed``, ``vector``, ``keyword``, ``fuse``, ``mmr``...,
            and ``total``).
    """

    chunks_total: int = 0
    candidates: int = 0
    corpus_tokens: int = 0
    kept_tokens: int = 0
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def saved_share(self) -> float:
        """Share of the corpus's tokens the LLM is spared (1.0 = all of them; 0.0 for an empty corpus)."""
        if self.corpus_tokens <= 0:
            return 0.0
        return max(0.0, 1.0 - self.kept_tokens / self.corpus_tokens)


@dataclass(frozen=True)
class Shortlist:
    """The answer of :meth:`shortlist.prefilter.Prefilter.search`: hits, best first, and figures.

    An empty shortlist is a valid answer: nothing cleared the threshold, so there is nothing for the LLM to read.
    """

    query: str
    hits: tuple[Hit, ...]
    stats: SearchStats = field(default_factory=SearchStats)

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __getitem__(self, index: int) -> Hit:
        return self.hits[index]

    @property
    def texts(self) -> list[str]:
        """The hits' texts, best first."""
        return [hit.text for hit in self.hits]

    def to_dict(self) -> dict[str, Any]:
        """The shortlist as plain JSON-ready data (the shape of ``shortlist query --json``).

        Returns:
            ``{"query", "hits": [Hit.to_dict(), ...], "stats": {...}}``; scores, shares and timings rounded.
        """
        stats = self.stats
        return {
            "query": self.query,
            "hits": [hit.to_dict() for hit in self.hits],
            "stats": {
                "chunks_total": stats.chunks_total,
                "candidates": stats.candidates,
                "corpus_tokens": stats.corpus_tokens,
                "kept_tokens": stats.kept_tokens,
                "saved_share": round(stats.saved_share, 6),
                "timings_ms": {k: round(float(v), 3) for k, v in stats.timings_ms.items()},
            },
        }
