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
    MIN_PROBES,
    PROBE_DEPTH,
    PROBE_POOL,
    PROBES,
    SEED,
    Calibration,
    Probe,
    dense_weight,
    make_probes,
    probe_pool_ids,
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


def calibrate(
    chunks: Sequence[tuple[str, str, str]],
    index: KeywordIndex,
    encoder: Encoder,
    dense_search: DenseSearch,
    *,
    fingerprint: str = "",
    n_probes: int = PROBES,
    seed: int = SEED,
) -> Calibration:
    """Calibrate the dense weight of a collection from probes drawn from its own chunks (see :mod:`shortlist.fusion`).

    Args:
        chunks: ``(id, source, text)`` of every chunk in the collection.
        index: The collection's keyword index.
        encoder: The collection's encoder (probes are embedded with it).
        dense_search: ``(query vector, n) -> [(id, cosine)]`` best first, over the collection.
        fingerprint: Recorded in the result (what it was computed from).
        n_probes: Probes to draw at most.
        seed: The draw's seed.

    Returns:
        The :class:`~shortlist.keywords.calibration.Calibration`.
    """
    start = time.perf_counter()
    sources = {id_: src for id_, src, _ in chunks}
    probes = make_probes(chunks, n=n_probes, seed=seed)
    weights: dict[str, float] = {}
    counts: dict[str, int] = {}
    figures: dict[str, dict[str, float]] = {}
    for script in sorted({p.script for p in probes}):
        group = [p for p in probes if p.script == script]
        counts[script] = len(group)
        if len(group) < MIN_PROBES:
            continue
        lists = _rank_lists(group, index, encoder, dense_search, PROBE_DEPTH)
        mrr_dense = float(np.mean([_mrr(d, p.source, sources) for p, (d, _) in zip(group, lists, strict=True)]))
        mrr_kw = float(np.mean([_mrr(k, p.source, sources) for p, (_, k) in zip(group, lists, strict=True)]))
        weight = dense_weight(mrr_dense, mrr_kw, script)
        fused = float(
            np.mean(
                [
                    _mrr(convex("", d, k, weight=weight), p.source, sources)
                    for p, (d, k) in zip(group, lists, strict=True)
                ]
            )
        )
        weights[script] = weight
        figures[script] = {"dense": mrr_dense, "keyword": mrr_kw, "fused": fused}
    seconds = time.perf_counter() - start
    logger.info("Calibrated hybrid fusion on %d probes in %.2fs: %s", len(probes), seconds, weights)
    return Calibration(fingerprint, weights, counts, figures, seconds)


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
        fingerprint=str(getattr(index, "position", None) or getattr(index, "fingerprint", "")),
    )
