"""Computing a collection's hybrid calibration: each probe searched by both sides, each side's MRR, the weights.

The value and its file live in :mod:`shortlist.keywords.calibration`; the method is described in
:mod:`shortlist.fusion`. This is the one place that runs searches to calibrate: callers (the pre-filter, ahead of
a hybrid search or right after ingest) pass the result to :class:`~shortlist.search.fusion.AdaptiveFusion`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from shortlist.keywords.calibration import (
    CJK_PRIOR_WEIGHT,
    MIN_PROBES,
    PRIOR_WEIGHT,
    PROBE_DEPTH,
    PROBE_POOL,
    PROBES,
    SEED,
    Calibration,
    Probe,
    coverage,
    dense_weight,
    fit_relevance,
    make_probes,
    probe_pool_ids,
    relevance_features,
    relevance_prior,
    shrunk_weight,
)
from shortlist.search.fusion import convex

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.store import ChunkStore

__all__ = ["DenseSearch", "calibrate", "calibrate_collection"]

logger = logging.getLogger(__name__)


class KeywordIndex(Protocol):
    """What the calibration asks of a keyword index (``KeywordIndex`` and ``LiveKeywordIndex`` both answer)."""

    def search(self, query_text: str, k: int, /) -> Sequence[tuple[str, float]]: ...

    def score_texts(self, query_text: str, texts: Sequence[str], /) -> Any: ...


#: ``(query vector, n) -> [(id, cosine)]`` best first, over the collection.
DenseSearch = Callable[[np.ndarray[Any, np.dtype[np.float32]], int], list[tuple[str, float]]]


def _rank_lists(
    probes: Sequence[Probe],
    index: KeywordIndex,
    encoder: Encoder,
    dense_search: DenseSearch,
    depth: int,
) -> list[tuple[list[tuple[str, float]], list[tuple[str, float]]]]:
    """Each probe's dense and keyword lists, the held-out chunk scored in place of the chunk it came from."""
    qvecs = np.asarray(encoder.embed_documents([p.query for p in probes]), dtype=np.float32)
    rvecs = np.asarray(encoder.embed_documents([p.rest for p in probes]), dtype=np.float32)
    out = []
    for p, qv, rv in zip(probes, qvecs, rvecs, strict=True):
        held = (p.chunk_id, float(np.dot(qv, rv)))
        dense = [(i, s) for i, s in dense_search(qv, depth + 1) if i != p.chunk_id][:depth]
        dense = _insert(dense, held, depth)
        kw_held = (p.chunk_id, float(index.score_texts(p.query, [p.rest])[0]))
        keyword = [(i, s) for i, s in index.search(p.query, depth + 1) if i != p.chunk_id][:depth]
        keyword = _insert(keyword, kw_held, depth) if kw_held[1] > 0 else keyword
        out.append((dense, keyword))
    return out


def _insert(ranked: list[tuple[str, float]], item: tuple[str, float], depth: int) -> list[tuple[str, float]]:
    pos = next((i for i, (_, s) in enumerate(ranked) if item[1] > s), len(ranked))
    if pos >= depth:
        return ranked
    return (ranked[:pos] + [item] + ranked[pos:])[:depth]


def _mrr(order: Sequence[tuple[str, float]], source: str, sources: Mapping[str, str], k: int = 10) -> float:
    for rank, (id_, _) in enumerate(order[:k], start=1):
        if sources.get(id_) == source:
            return 1.0 / rank
    return 0.0


#: ``ids -> {id: (text, vector)}`` for chunks of the collection (the wrong hits the relevance model learns from).
Fetch = Callable[[Sequence[str]], Mapping[str, tuple[str, np.ndarray[Any, np.dtype[np.float32]] | None]]]


def _relevance_examples(
    group: Sequence[Probe],
    lists: Sequence[tuple[list[tuple[str, float]], list[tuple[str, float]]]],
    sources: Mapping[str, str],
    index: KeywordIndex,
    encoder: Encoder,
    fetch: Fetch,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Features and labels for the relevance model.

    Each probe's right chunk (its text without the sentence) and the best wrong chunk of each side (of another
    document).
    """
    wrong: list[list[str]] = []
    for p, (dense, keyword) in zip(group, lists, strict=True):
        picks = []
        for ranked in (dense, keyword):
            for id_, _ in ranked:
                if id_ != p.chunk_id and sources.get(id_, "") != p.source:
                    picks.append(id_)
                    break
        wrong.append(list(dict.fromkeys(picks)))
    got = fetch(sorted({i for ids in wrong for i in ids}))
    qvecs = np.asarray(encoder.embed_documents([p.query for p in group]), dtype=np.float32)
    rvecs = np.asarray(encoder.embed_documents([p.rest for p in group]), dtype=np.float32)
    rows: list[np.ndarray[Any, Any]] = []
    labels: list[float] = []
    for p, qv, rv, ids in zip(group, qvecs, rvecs, wrong, strict=True):
        texts = [p.rest] + [got[i][0] for i in ids if i in got]
        cosines = [float(np.dot(qv, rv))]
        for i in ids:
            if i in got:
                vec = got[i][1]
                cosines.append(float(np.dot(qv, vec)) if vec is not None else 0.0)
        bm25 = [float(x) for x in index.score_texts(p.query, texts)]
        for j, (text, cos, bm) in enumerate(zip(texts, cosines, bm25, strict=True)):
            rows.append(relevance_features(cos, bm, coverage(p.query, text)))
            labels.append(1.0 if j == 0 else 0.0)
    return np.asarray(rows), np.asarray(labels)


def calibrate(
    chunks: Sequence[tuple[str, str, str]],
    index: KeywordIndex,
    encoder: Encoder,
    dense_search: DenseSearch,
    *,
    fingerprint: str = "",
    n_probes: int = PROBES,
    seed: int = SEED,
    fetch: Fetch | None = None,
) -> Calibration:
    """Calibrate the dense weight and the relevance model of a collection from probes drawn from its own chunks.

    Per script with :data:`~shortlist.keywords.calibration.MIN_PROBES` probes or more: the dense weight the two
    sides' MRR suggest, shrunk toward the prior by how much the probes found
    (:func:`~shortlist.keywords.calibration.shrunk_weight`); and the relevance model: the two sides' evidence
    weighed by that weight (:func:`~shortlist.keywords.calibration.relevance_prior`), its level fitted on the
    probes' right chunks against the best wrong ones, shrunk toward the prior's (see :mod:`shortlist.fusion`).

    Args:
        chunks: ``(id, source, text)`` of the chunks the probes are drawn from.
        index: The collection's keyword index.
        encoder: The collection's encoder (probes are embedded with it).
        dense_search: ``(query vector, n) -> [(id, cosine)]`` best first, over the collection.
        fingerprint: Recorded in the result (what it was computed from).
        n_probes: Probes to draw at most.
        seed: The draw's seed.
        fetch: Reads chunks' texts and vectors (for the wrong hits the relevance model learns from); ``None``:
            only chunks in ``chunks`` are used, compared by their texts' embeddings.

    Returns:
        The :class:`~shortlist.keywords.calibration.Calibration`.
    """
    start = time.perf_counter()
    sources = {id_: src for id_, src, _ in chunks}
    if fetch is None:
        texts = {id_: text for id_, _, text in chunks}

        def fetch(ids: Sequence[str]) -> Mapping[str, tuple[str, np.ndarray[Any, np.dtype[np.float32]] | None]]:
            known = [i for i in ids if i in texts]
            vecs = np.asarray(encoder.embed_documents([texts[i] for i in known]), dtype=np.float32)
            return {i: (texts[i], v) for i, v in zip(known, vecs, strict=True)}

    probes = make_probes(chunks, n=n_probes, seed=seed)
    weights: dict[str, float] = {}
    counts: dict[str, int] = {}
    figures: dict[str, dict[str, float]] = {}
    relevance: dict[str, tuple[float, ...]] = {}
    for script in sorted({p.script for p in probes}):
        group = [p for p in probes if p.script == script]
        counts[script] = len(group)
        if len(group) < MIN_PROBES:
            continue
        lists = _rank_lists(group, index, encoder, dense_search, PROBE_DEPTH)
        mrr_dense = float(np.mean([_mrr(d, p.source, sources) for p, (d, _) in zip(group, lists, strict=True)]))
        mrr_kw = float(np.mean([_mrr(k, p.source, sources) for p, (_, k) in zip(group, lists, strict=True)]))
        prior = CJK_PRIOR_WEIGHT if script == "cjk" else PRIOR_WEIGHT
        ratio = dense_weight(mrr_dense, mrr_kw, script)

        def reciprocal_ranks(w: float, group: Sequence[Probe] = group, lists: Any = lists) -> np.ndarray[Any, Any]:
            return np.array(
                [_mrr(convex("", d, k, weight=w), p.source, sources) for p, (d, k) in zip(group, lists, strict=True)]
            )

        weight = shrunk_weight(
            [_mrr(d, p.source, sources) for p, (d, _) in zip(group, lists, strict=True)],
            [_mrr(k, p.source, sources) for p, (_, k) in zip(group, lists, strict=True)],
            prior,
        )
        weights[script] = weight
        figures[script] = {
            "dense": mrr_dense,
            "keyword": mrr_kw,
            "fused": float(reciprocal_ranks(weight).mean()),
            "ratio": ratio,
        }
        x, y = _relevance_examples(group, lists, sources, index, encoder, fetch)
        relevance[script] = fit_relevance(x, y, relevance_prior(script, weight))
    seconds = time.perf_counter() - start
    logger.info("Calibrated hybrid fusion on %d probes in %.2fs: %s", len(probes), seconds, weights)
    return Calibration(fingerprint, weights, counts, figures, seconds, relevance=relevance)


def calibrate_collection(store: ChunkStore, encoder: Encoder, index: KeywordIndex) -> Calibration:
    """Calibrate a collection from its own chunks, vectors and keyword ``index``.

    The probes come from up to :data:`~shortlist.keywords.calibration.PROBE_POOL` chunks drawn with a fixed seed;
    the result carries the index's fingerprint.
    """
    pool = [(c.id, c.source, c.text) for c in store.get(probe_pool_ids(store.ids(page=20_000), PROBE_POOL))]
    return calibrate(
        pool,
        index,
        encoder,
        lambda vec, n: [(c.id, float(c.score or 0.0)) for c in store.query(vec, n)],
        fetch=lambda ids: {c.id: (c.text, c.embedding) for c in store.get(list(ids), include_embeddings=True)},
        fingerprint=str(getattr(index, "position", None) or getattr(index, "fingerprint", "")),
    )
