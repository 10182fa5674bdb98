"""The stages of a search after the candidates are gathered: plain functions over plain data.

In search order: :func:`fused_order` (the fusion, hybrid mode) -> :func:`threshold` (``min_score``, on cosine) ->
:func:`cap_per_source` (``max_per_source``) -> :func:`diversify` (MMR, by :func:`maximal_marginal_relevance`) ->
:func:`top_k` -> :func:`score_relevance` and :func:`above_relevance` (``min_relevance``) -> :func:`within_budget`
(token budget) -> :func:`to_hits`. None of them reads the store or runs the
model: they take ids, scores, token counts and vectors that :mod:`shortlist.search.pipeline` gathered.

Example:
    ```python
    import numpy as np

    from shortlist.search.stages import maximal_marginal_relevance

    vectors = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]], dtype=np.float32)
    print(maximal_marginal_relevance(np.array([1.0, 0.0], dtype=np.float32), vectors, lambda_mult=0.5, k=2))
    # [0, 2]
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.keywords.calibration import Calibration, unit_texts
from shortlist.types import Hit

if TYPE_CHECKING:
    from shortlist.config import SearchMode
    from shortlist.search.fusion import Fusion
    from shortlist.store import StoredChunk

__all__ = [
    "Candidate",
    "above_relevance",
    "cap_per_source",
    "diversify",
    "fused_order",
    "maximal_marginal_relevance",
    "scaled",
    "score_relevance",
    "threshold",
    "to_hits",
    "top_k",
    "within_budget",
]

Vector = np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class Candidate:
    """A chunk considered by one search (mutable scratch data, not part of the answer).

    Attributes:
        chunk: The stored chunk (id, text, metadata, token count).
        cosine: Cosine similarity to the query (``None`` until computed).
        keyword: BM25 score (``None`` if not a keyword candidate).
        fused: Score used for ordering (cosine, BM25 or the fused score, by mode).
        embedding: The chunk's stored vector, when read.
        relevance: The calibrated relevance in [0, 1] (:func:`score_relevance`), once computed.
    """

    chunk: StoredChunk
    cosine: float | None = None
    keyword: float | None = None
    fused: float = 0.0
    embedding: Vector | None = field(default=None, repr=False)
    relevance: float | None = None


def fused_order(
    mode: SearchMode,
    query: str,
    dense: Sequence[tuple[str, float]],
    keyword: Sequence[tuple[str, float]],
    fusion: Fusion | None,
) -> list[tuple[str, float]]:
    """The candidates' order: ``fusion(query, dense, keyword)`` in hybrid mode, else the one list the mode reads.

    Raises:
        ValueError: in hybrid mode without a fusion.
    """
    if mode == "hybrid":
        if fusion is None:
            msg = "hybrid mode needs a fusion"
            raise ValueError(msg)
        return fusion(query, dense, keyword)
    return list(dense if mode == "dense" else keyword)


def threshold(ranked: Sequence[Candidate], min_score: float) -> list[Candidate]:
    """The candidates whose cosine similarity is at least ``min_score`` (one never compared counts as -1), in order."""
    return [c for c in ranked if (c.cosine if c.cosine is not None else -1.0) >= min_score]


def score_relevance(
    query: str,
    ranked: Sequence[Candidate],
    calibration: Calibration,
    score_texts: Callable[[str, Sequence[str]], Any],
    score_ids: Callable[[str, Sequence[str]], Sequence[float | None]] | None = None,
) -> list[Candidate]:
    """The candidates with their :attr:`Candidate.relevance` set, in order (see
    :meth:`~shortlist.keywords.calibration.Calibration.relevance_for`).

    Args:
        query: The question.
        ranked: The candidates.
        calibration: The collection's calibration (its relevance model).
        score_texts: ``(query, texts) -> BM25 scores`` with the collection's statistics (the keyword index's).
        score_ids: ``(query, ids) -> BM25 scores`` of indexed chunks by id (``None`` for one not indexed), the
            same scores without tokenising the texts; the others go to ``score_texts``.
    """  # noqa: D205
    out = list(ranked)
    if not out or not query:
        return out
    by_id: list[float | None] = (
        list(score_ids(query, [c.chunk.id for c in out])) if score_ids is not None else [None] * len(out)
    )
    rest = [i for i, b in enumerate(by_id) if b is None]
    if rest:
        for i, b in zip(rest, score_texts(query, [out[i].chunk.text for i in rest]), strict=True):
            by_id[i] = float(b)
    bm25 = [float(b or 0.0) for b in by_id]
    # a kind of unit (CJK, words) the collection knows none of is left out of the coverage
    known = [bool(t) and float(score_texts(t, [t])[0]) > 0 for t in unit_texts(query)]
    for cand, b in zip(out, bm25, strict=True):
        cand.relevance = calibration.relevance_for(
            query, float(cand.cosine or 0.0), b, cand.chunk.text, cjk=known[0], words=known[1]
        )
    return out


def above_relevance(ranked: Sequence[Candidate], min_relevance: float) -> list[Candidate]:
    """The candidates whose relevance is at least ``min_relevance`` (one without a relevance counts as 0)."""
    return [c for c in ranked if (c.relevance if c.relevance is not None else 0.0) >= min_relevance]


def cap_per_source(ranked: Sequence[Candidate], cap: int) -> list[Candidate]:
    """The candidates in order, keeping at most ``cap`` of each document (the first ones)."""
    seen: dict[str, int] = {}
    out: list[Candidate] = []
    for cand in ranked:
        src = cand.chunk.source
        if seen.get(src, 0) < cap:
            seen[src] = seen.get(src, 0) + 1
            out.append(cand)
    return out


def scaled(scores: Sequence[float]) -> Vector:
    """``scores`` min-max scaled to [0, 1] (float32); all ones when they are all equal."""
    values = np.asarray(scores, dtype=np.float32)
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)


def maximal_marginal_relevance(
    query_embedding: Vector,
    embedding_list: Vector | Sequence[Vector],
    lambda_mult: float = 0.5,
    k: int = 4,
    *,
    relevance: Vector | None = None,
) -> list[int]:
    """Pick ``k`` items greedily by maximal marginal relevance; returns their indices in pick order.

    Each step takes the item with the highest ``lambda_mult * relevance - (1 - lambda_mult) * redundancy``, where
    redundancy is its highest cosine similarity to an item already picked (0 for the first pick); ties go to the
    earlier item. Vectors are L2-normalised, so dot products are cosines.

    Args:
        query_embedding: The query's vector (used for relevance when ``relevance`` is not given).
        embedding_list: The items' vectors, one row each.
        lambda_mult: 1.0 is pure relevance, 0.0 pure diversity.
        k: How many to pick (at most the number of items).
        relevance: Each item's relevance (e.g. its fused rank score scaled to [0, 1]) instead of its cosine to the
            query.

    Returns:
        Indices into ``embedding_list``.
    """
    if len(embedding_list) == 0 or k <= 0:
        return []
    vecs = np.stack([np.asarray(v, dtype=np.float32) for v in embedding_list])
    rel = vecs @ query_embedding if relevance is None else relevance
    sims = vecs @ vecs.T
    chosen: list[int] = []
    left = list(range(len(vecs)))
    while left and len(chosen) < k:
        if chosen:
            redundancy = sims[np.ix_(left, chosen)].max(axis=1)
        else:
            redundancy = np.zeros(len(left), dtype=np.float32)
        score = lambda_mult * rel[left] - (1.0 - lambda_mult) * redundancy
        best = left[int(np.argmax(score))]
        chosen.append(best)
        left.remove(best)
    return chosen


def diversify(ranked: Sequence[Candidate], query_embedding: Vector, k: int, lam: float, mode: str) -> list[Candidate]:
    """Re-rank candidates by MMR and keep ``k``; candidates without a vector are left out.

    Relevance is the cosine to the query in dense mode; otherwise the fused (or BM25) order's scores, scaled to
    [0, 1], so MMR keeps the keyword signal.
    """
    usable = [c for c in ranked if c.embedding is not None]
    vecs = [np.asarray(c.embedding, dtype=np.float32) for c in usable]
    relevance = None if mode == "dense" or not usable else scaled([c.fused for c in usable])
    return [usable[i] for i in maximal_marginal_relevance(query_embedding, vecs, lam, k, relevance=relevance)]


def top_k(ranked: Sequence[Candidate], k: int) -> list[Candidate]:
    """The first ``k`` candidates."""
    return list(ranked[:k])


def within_budget(ranked: Sequence[Candidate], budget: int) -> list[Candidate]:
    """The best candidates whose texts fit in ``budget`` word pieces, in rank order.

    A candidate that does not fit is skipped, and smaller later ones may still be taken.
    """
    kept: list[Candidate] = []
    used = 0
    for cand in ranked:
        if used + cand.chunk.tokens <= budget:
            kept.append(cand)
            used += cand.chunk.tokens
    return kept


def to_hits(ranked: Sequence[Candidate]) -> tuple[Hit, ...]:
    """The candidates as :class:`~shortlist.types.Hit` objects, ranked from 1; ``score`` is the cosine (0 if none).

    A hit carries its chunk's word-piece count from ingest (``None`` if the store has none recorded).
    """
    return tuple(
        Hit(
            id=c.chunk.id,
            text=c.chunk.text,
            score=float(c.cosine or 0.0),
            metadata=c.chunk.metadata,
            rank=i,
            tokens=c.chunk.tokens or None,
            relevance=c.relevance,
        )
        for i, c in enumerate(ranked, start=1)
    )
