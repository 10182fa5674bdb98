"""The query path, stage by stage.

Encode -> gather (dense, keyword) -> fuse -> threshold -> cap per source -> MMR -> top-k -> relevance ->
token budget ->
:class:`~shortlist.types.Shortlist`.

:func:`query_vector` turns a question (or a caller's vector) into the query vector; :func:`run` gathers candidates
from a :class:`CandidateSource` (the store and the keyword index, behind a small protocol) and passes them through
the plain stages of :mod:`shortlist.search.stages`; :func:`to_shortlist` makes the answer. The calibration is not
computed here: a hybrid search gets a fusion that already holds it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from shortlist.errors import EmbeddingModelMismatchError, InputError
from shortlist.search.stages import (
    Candidate,
    above_relevance,
    cap_per_source,
    diversify,
    fused_order,
    score_relevance,
    threshold,
    to_hits,
    top_k,
    within_budget,
)
from shortlist.text import clean_text
from shortlist.types import SearchStats, Shortlist

if TYPE_CHECKING:
    from shortlist.keywords.calibration import Calibration
    from shortlist.search.fusion import Fusion
    from shortlist.search.options import SearchOptions
    from shortlist.store import StoredChunk

__all__ = ["CandidateSource", "gather", "query_vector", "run", "to_shortlist"]

Vector = np.ndarray[Any, np.dtype[np.float32]]
#: ``(query, ids) -> BM25 scores`` of indexed chunks (``None`` for one the index does not hold).
ScoreIds = Callable[[str, Sequence[str]], Sequence[float | None]]
Filter = Mapping[str, Any] | None


class CandidateSource(Protocol):
    """Where a search draws its candidates from (a collection and its keyword index)."""

    def dense(
        self,
        vector: Vector,
        n: int,
        *,
        where: Filter,
        where_document: Filter,
        with_vectors: bool,
        with_text: bool = True,
    ) -> Sequence[StoredChunk]:
        """The ``n`` chunks nearest ``vector`` (``score`` = cosine), best first, with vectors if asked.

        ``with_text=False``: ids and cosines only (no text, no metadata), read back later for the few kept.
        """
        ...

    def keyword(self, text: str, n: int, *, where: Filter, where_document: Filter) -> list[tuple[str, float]]:
        """The ``n`` best ``(id, bm25)`` pairs among the chunks the filters let through, best first."""
        ...

    def chunks(self, ids: Sequence[str], *, with_text: bool) -> Sequence[StoredChunk]:
        """The chunks with these ids (those that still exist), with their vectors."""
        ...


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _add(timings: dict[str, float], key: str, start: float) -> None:
    timings[key] = timings.get(key, 0.0) + _ms(start)


def query_vector(
    query: Any,
    mode: str,
    embed: Callable[[str], Vector],
    *,
    dimension: int,
    collection: str,
    model_name: str,
    timings: dict[str, float],
) -> tuple[str, Vector]:
    """The question's text and its L2-normalised vector (``""`` and the caller's vector, normalised, for a vector).

    Raises:
        InputError: on an empty question, a vector of the wrong shape or not finite, or a vector outside dense mode.
        EmbeddingModelMismatchError: on a vector of another dimension than the collection's.
    """
    t = time.perf_counter()
    if isinstance(query, str):
        if not clean_text(query):
            msg = "The query is empty: ask a question (an empty query would match everything a little)."
            raise InputError(msg)
        vec = embed(query)
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
        if vec.shape[0] != dimension:
            msg = (
                f"The query vector has {vec.shape[0]} dimensions; collection {collection!r} holds "
                f"{dimension}-dimensional vectors of {model_name!r}."
            )
            raise EmbeddingModelMismatchError(msg)
        norm = float(np.linalg.norm(vec))
        if not math.isfinite(norm) or norm == 0.0:
            msg = "The query vector is zero or not finite."
            raise InputError(msg)
        return "", (vec / norm).astype(np.float32)
    msg = f"query must be a non-empty str (or a vector in dense mode), got {type(query).__name__}."
    raise InputError(msg)


def _plain(options: SearchOptions) -> bool:
    """Whether the search keeps its first ``k`` candidates as they are (no stage may drop or reorder them)."""
    return (
        options.min_score is None
        and options.min_relevance is None
        and not options.mmr
        and options.max_per_source is None
        and options.budget is None
    )


def gather(
    text: str,
    qvec: Vector,
    fetch: int,
    options: SearchOptions,
    source: CandidateSource,
    fusion: Fusion | None,
    timings: dict[str, float],
) -> tuple[list[Candidate], int, bool]:
    """Candidates in search order, how many were looked at, and whether an index had more to give.

    Dense candidates carry the store's cosine; a keyword-only candidate is read back with its vector and gets its
    cosine from it (so every hit's score is a cosine); an id deleted between the two reads is dropped. A plain
    search asks the vector index for ids and cosines only and reads the texts of the ``k`` it keeps (Chroma reads
    a text and metadata row by row: 40 of them cost more than the nearest-neighbour search itself).
    """
    mode = options.mode or "dense"
    where, where_document = options.where, options.where_document
    cands: dict[str, Candidate] = {}
    dense: list[tuple[str, float]] = []
    keyword: list[tuple[str, float]] = []
    plain = _plain(options)
    light: set[str] = set()  # dense candidates read without text: read back if kept
    if mode in ("dense", "hybrid"):
        t = time.perf_counter()
        found = source.dense(
            qvec, fetch, where=where, where_document=where_document, with_vectors=options.mmr, with_text=not plain
        )
        for c in found:
            cands[c.id] = Candidate(c, cosine=c.score, embedding=c.embedding)
            dense.append((c.id, float(c.score or 0.0)))
        if plain:
            light.update(cands)
        _add(timings, "vector", t)
    if mode in ("keyword", "hybrid"):
        t = time.perf_counter()
        keyword = source.keyword(text, fetch, where=where, where_document=where_document)
        _add(timings, "keyword", t)
    t = time.perf_counter()
    order = fused_order(mode, text, dense, keyword, fusion)
    if mode == "hybrid":
        _add(timings, "fuse", t)
    kw_scores = dict(keyword)
    # Keyword-only candidates are read back (text, vector) in fused order, and a plain search's dense ones (text).
    # A plain search (no threshold, diversity, per-document cap or budget) keeps its first k, so only as many as
    # it can use are read: about k, more when some were deleted between the two reads.
    want = options.k if plain else len(order)
    read: set[str] = set()
    pos = 0
    while pos < len(order):
        present = sum(1 for i, _ in order[:pos] if i in cands)
        if present >= want:
            break
        step = order[pos : pos + max(want - present, 1)] if plain else order[pos:]
        pos += len(step)
        missing = [i for i, _ in step if (i not in cands or i in light) and i not in read]
        if missing:
            t = time.perf_counter()
            read.update(missing)
            for c in source.chunks(missing, with_text=True):
                known = cands.get(c.id)
                if known is not None and c.id in light:  # a dense candidate: its cosine is the index's
                    known.chunk = replace(c, score=known.chunk.score)
                    light.discard(c.id)
                    continue
                emb = c.embedding
                cos = float(np.dot(emb, qvec)) if emb is not None else 0.0
                cands[c.id] = Candidate(c, cosine=cos, embedding=emb)
            for id_ in [i for i in missing if i in light]:  # deleted between the two reads
                light.discard(id_)
                del cands[id_]
            _add(timings, "fetch", t)
    ranked: list[Candidate] = []
    for id_, score in order[:pos] if plain else order:
        cand = cands.get(id_)
        if cand is None:  # deleted between the two reads
            continue
        cand.fused = float(score)
        cand.keyword = kw_scores.get(id_)
        ranked.append(cand)
    saturated = len(dense) >= fetch or len(keyword) >= fetch
    return ranked, len(cands), saturated


def run(
    text: str,
    qvec: Vector,
    options: SearchOptions,
    source: CandidateSource,
    *,
    fusion: Fusion | None,
    total: int,
    timings: dict[str, float],
    relevance: tuple[Calibration, Callable[[str, Sequence[str]], Any], ScoreIds | None] | None = None,
) -> tuple[list[Candidate], int]:
    """Gather, threshold, cap per source, diversify, cut to ``k``, score relevance and fit the budget.

    Returns the kept candidates and how many were looked at.

    Args:
        text: The question ("" for a query vector).
        qvec: The query vector.
        options: The search's options, with the mode resolved.
        source: Where candidates come from.
        fusion: The hybrid fusion (holding its calibration); unused in the other modes.
        total: Chunks in the collection (the pool is widened up to it when a per-source cap leaves too few).
        timings: Per-stage milliseconds, added to.
        relevance: The calibration and the keyword index's ``score_texts`` and ``score_ids`` (or ``None``) the
            hits' relevance comes from; ``None``: no relevance (a search by vector).
    """
    mode = options.mode or "dense"
    fetch = options.fetch_size()
    k = options.k
    ranked: list[Candidate] = []
    while True:
        ranked, n_candidates, saturated = gather(text, qvec, fetch, options, source, fusion, timings)
        if options.min_score is not None:
            ranked = threshold(ranked, options.min_score)
        if options.max_per_source is not None:
            ranked = cap_per_source(ranked, options.max_per_source)
            # Too few distinct documents in the pool: widen it (x4) while the indexes have more to give.
            if len(ranked) < k and saturated and fetch < total:
                fetch = min(fetch * 4, total)
                continue
        break
    if options.mmr and len(ranked) > 1:
        t = time.perf_counter()
        missing = [c.chunk.id for c in ranked if c.embedding is None]
        if missing:
            got = {c.id: c.embedding for c in source.chunks(missing, with_text=False)}
            for c in ranked:
                if c.embedding is None:
                    c.embedding = got.get(c.chunk.id)
        ranked = diversify(ranked, qvec, k, float(options.mmr_lambda), mode)
        timings["mmr"] = _ms(t)
    ranked = top_k(ranked, k)
    if relevance is not None:
        t = time.perf_counter()
        ranked = score_relevance(text, ranked, relevance[0], relevance[1], relevance[2])
        if options.min_relevance is not None:
            ranked = above_relevance(ranked, options.min_relevance)
        timings["relevance"] = _ms(t)
    if options.budget is not None:
        ranked = within_budget(ranked, options.budget)
    return ranked, n_candidates


def to_shortlist(
    text: str,
    ranked: Sequence[Candidate],
    *,
    candidates: int,
    total: int,
    corpus_tokens: int,
    timings: dict[str, float],
    started: float,
) -> Shortlist:
    """The :class:`~shortlist.types.Shortlist` of the kept candidates, with the search's figures.

    ``timings`` gets its ``total`` (milliseconds since ``started``, a :func:`time.perf_counter` value).
    """
    hits = to_hits(ranked)
    timings["total"] = _ms(started)
    stats = SearchStats(
        chunks_total=total,
        candidates=candidates,
        corpus_tokens=corpus_tokens,
        kept_tokens=sum(c.chunk.tokens for c in ranked),
        timings_ms=timings,
    )
    return Shortlist(query=text, hits=hits, stats=stats)
