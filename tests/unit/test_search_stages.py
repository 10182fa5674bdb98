"""The query path's stages over plain data: fusion modes, threshold, per-source cap, MMR, top-k, token budget, and
the pipeline that runs them over an in-memory candidate source (no model, no Chroma)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from shortlist.errors import ConfigError, EmbeddingModelMismatchError, InputError
from shortlist.keywords.calibration import CJK_PRIOR_WEIGHT, PRIOR_WEIGHT, Calibration
from shortlist.search import pipeline
from shortlist.search.fusion import AdaptiveFusion, combine, convex, rrf
from shortlist.search.options import SearchOptions
from shortlist.search.stages import (
    Candidate,
    cap_per_source,
    diversify,
    fused_order,
    maximal_marginal_relevance,
    scaled,
    score_relevance,
    threshold,
    to_hits,
    top_k,
    within_budget,
)
from shortlist.store import StoredChunk
from shortlist.types import Hit

DENSE = [("a", 0.9), ("b", 0.7), ("c", 0.4)]
KEYWORD = [("c", 8.0), ("d", 4.0), ("a", 2.0)]


def _cand(id_: str, source: str = "", cosine: float | None = None, tokens: int = 0, fused: float = 0.0) -> Candidate:
    chunk = StoredChunk(id_, f"text of {id_}", {"source": source or id_, "chunk": 0}, tokens, cosine)
    return Candidate(chunk, cosine=cosine, fused=fused)


# ---------------------------------------------------------------------------------------------- fusion modes
def test_rrf_by_hand() -> None:
    fused = dict(rrf("q", DENSE, KEYWORD))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62) and fused["d"] == pytest.approx(1 / 62)
    # a and c tie on score: the dense rank breaks it; b and d tie: b is in the dense list, d only in the keyword one
    assert [i for i, _ in rrf("q", DENSE, KEYWORD)] == ["a", "c", "b", "d"]
    assert [i for i, _ in rrf("q", DENSE, KEYWORD, weights=(0.0, 1.0))] == ["c", "d", "a"]
    assert dict(rrf("q", DENSE, [], k=10))["b"] == pytest.approx(1 / 12)


def test_convex_by_hand() -> None:
    w = 0.6
    fused = dict(convex("q", DENSE, KEYWORD, weight=w))
    dense_scaled = {"a": 1.0, "b": (0.7 - 0.4) / 0.5, "c": 0.0}
    kw_scaled = {"c": 1.0, "d": 0.5, "a": 0.25}
    for id_ in "abcd":
        expected = w * dense_scaled.get(id_, 0.0) + (1 - w) * kw_scaled.get(id_, 0.0)
        assert fused[id_] == pytest.approx(expected)
    assert [i for i, _ in convex("q", DENSE, KEYWORD, weight=w)] == sorted(fused, key=lambda i: -fused[i])
    # one dense score only: it counts as the list's best
    assert dict(convex("q", [("x", 0.2)], [], weight=0.5)) == {"x": 0.5}


def test_combine_ties_follow_dense_then_keyword_rank() -> None:
    assert [i for i, _ in combine([("a", 1.0), ("b", 1.0)], [("c", 1.0), ("b", 0.0)])] == ["a", "b", "c"]
    assert combine([], []) == []


def test_adaptive_fusion_takes_a_calibration_value() -> None:
    cal = Calibration(weights={"latin": 0.3})
    fusion = AdaptiveFusion(cal)
    assert fusion.calibration() is cal
    assert fusion.weight("cells divide") == 0.3
    assert fusion("cells", DENSE, KEYWORD) == convex("cells", DENSE, KEYWORD, weight=0.3)
    assert AdaptiveFusion().weight("cells") == PRIOR_WEIGHT
    assert AdaptiveFusion().weight("细胞分裂") == CJK_PRIOR_WEIGHT
    with pytest.raises(ConfigError, match="takes a Calibration value"):
        AdaptiveFusion(lambda: cal)  # type: ignore[arg-type]


def test_fused_order_by_mode() -> None:
    assert fused_order("dense", "q", DENSE, KEYWORD, None) == DENSE
    assert fused_order("keyword", "q", DENSE, KEYWORD, None) == KEYWORD
    assert fused_order("hybrid", "q", DENSE, KEYWORD, rrf) == rrf("q", DENSE, KEYWORD)
    with pytest.raises(ValueError, match="needs a fusion"):
        fused_order("hybrid", "q", DENSE, KEYWORD, None)


# ---------------------------------------------------------------------------------------------- filters
def test_threshold_on_cosine() -> None:
    ranked = [_cand("a", cosine=0.5), _cand("b", cosine=None), _cand("c", cosine=0.2), _cand("d", cosine=0.3)]
    assert [c.chunk.id for c in threshold(ranked, 0.3)] == ["a", "d"]
    assert [c.chunk.id for c in threshold(ranked, -1.0)] == ["a", "b", "c", "d"]  # never compared counts as -1


def test_cap_per_source_keeps_the_first_of_each() -> None:
    ranked = [_cand(i, s) for i, s in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A"), ("b2", "B"), ("c1", "C")]]
    assert [c.chunk.id for c in cap_per_source(ranked, 1)] == ["a1", "b1", "c1"]
    assert [c.chunk.id for c in cap_per_source(ranked, 2)] == ["a1", "b1", "a2", "b2", "c1"]


def test_top_k_and_budget() -> None:
    ranked = [_cand(i, tokens=n) for i, n in [("a", 50), ("b", 80), ("c", 30), ("d", 20), ("e", 5)]]
    assert [c.chunk.id for c in top_k(ranked, 3)] == ["a", "b", "c"]
    # 50 fits; 80 would make 130 > 100: skipped; 30 -> 80; 20 -> 100; 5 -> 105: skipped
    assert [c.chunk.id for c in within_budget(ranked, 100)] == ["a", "c", "d"]
    assert within_budget(ranked, 0) == []
    assert [c.chunk.id for c in within_budget(ranked, 10**6)] == ["a", "b", "c", "d", "e"]


def test_to_hits() -> None:
    hits = to_hits([_cand("a", cosine=0.25, tokens=12), _cand("b", cosine=None)])
    assert [(h.id, h.score, h.rank, h.tokens) for h in hits] == [("a", 0.25, 1, 12), ("b", 0.0, 2, None)]
    assert hits[0] == Hit("a", "text of a", 0.25, hits[0].metadata, 1)  # tokens: not part of equality
    assert "tokens" not in repr(hits[0]) and "tokens" not in hits[0].to_dict()
    assert hits[0].metadata["source"] == "a"


# ---------------------------------------------------------------------------------------------- MMR
def _brute_mmr(q: np.ndarray, vecs: np.ndarray, lam: float, k: int, rel: Sequence[float] | None = None) -> list[int]:
    """Greedy MMR written out with plain Python floats (the reference the numpy version must match)."""

    def dot(u: Sequence[float], v: Sequence[float]) -> float:
        return sum(float(x) * float(y) for x, y in zip(u, v, strict=True))

    relevance = [dot(v, q) for v in vecs] if rel is None else [float(r) for r in rel]
    chosen: list[int] = []
    while len(chosen) < min(k, len(vecs)):
        best, best_score = -1, -math.inf
        for i in range(len(vecs)):
            if i in chosen:
                continue
            redundancy = max((dot(vecs[i], vecs[j]) for j in chosen), default=0.0)
            score = lam * relevance[i] - (1 - lam) * redundancy
            if score > best_score + 1e-6:  # first of (near-)equal scores wins, as argmax does
                best, best_score = i, score
        chosen.append(best)
    return chosen


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_mmr_matches_a_brute_force_greedy(lam: float) -> None:
    rng = np.random.default_rng(7)
    for _ in range(10):
        vecs = _unit(rng, 12, 8)
        q = _unit(rng, 1, 8)[0]
        assert maximal_marginal_relevance(q, vecs, lam, 6) == _brute_mmr(q, vecs, lam, 6)
        rel = rng.random(12).astype(np.float32)
        assert maximal_marginal_relevance(q, vecs, lam, 5, relevance=rel) == _brute_mmr(q, vecs, lam, 5, rel)


def test_mmr_prefers_a_different_item_over_a_near_duplicate() -> None:
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vecs = np.array([[1.0, 0.0, 0.0], [0.995, 0.0998, 0.0], [0.7, 0.0, 0.714]], dtype=np.float32)
    assert maximal_marginal_relevance(q, vecs, 1.0, 2) == [0, 1]  # pure relevance: the duplicate
    assert maximal_marginal_relevance(q, vecs, 0.3, 2) == [0, 2]  # diversity: the other one
    assert maximal_marginal_relevance(q, vecs, 0.3, 10) == [0, 2, 1]  # k past the items: all of them
    assert maximal_marginal_relevance(q, vecs[:0], 0.5, 3) == []


def test_diversify_uses_cosine_in_dense_mode_and_the_scaled_fused_order_otherwise() -> None:
    rng = np.random.default_rng(3)
    vecs = _unit(rng, 6, 5)
    q = _unit(rng, 1, 5)[0]
    ranked = [_cand(f"c{i}", fused=float(10 - i)) for i in range(6)]
    for c, v in zip(ranked, vecs, strict=True):
        c.embedding = v
    ranked[4].embedding = None  # no vector: left out
    usable = [i for i in range(6) if i != 4]
    dense = diversify(ranked, q, 3, 0.5, "dense")
    assert [c.chunk.id for c in dense] == [f"c{usable[i]}" for i in _brute_mmr(q, vecs[usable], 0.5, 3)]
    rel = [(10 - i - 5) / 5 for i in usable]  # fused 10..5 (c4 out) scaled to [0, 1]
    hybrid = diversify(ranked, q, 3, 0.5, "hybrid")
    assert [c.chunk.id for c in hybrid] == [f"c{usable[i]}" for i in _brute_mmr(q, vecs[usable], 0.5, 3, rel)]
    assert scaled([3.0, 3.0]).tolist() == [1.0, 1.0]


# ---------------------------------------------------------------------------------------------- pipeline
class _Memory:
    """A candidate source over plain data: chunks with vectors, and fixed BM25 scores per chunk."""

    def __init__(self, chunks: Sequence[StoredChunk], bm25: Mapping[str, float]) -> None:
        self.by_id = {c.id: c for c in chunks}
        self.bm25 = dict(bm25)
        self.dense_calls: list[int] = []
        self.reads: list[list[str]] = []  # each chunks() call's ids
        self.rows_gone: set[str] = set()  # rows deleted that the vector index still finds

    def dense(
        self, vector: Any, n: int, *, where: Any, where_document: Any, with_vectors: bool, with_text: bool = True
    ) -> list[StoredChunk]:
        self.dense_calls.append(n)
        scored = sorted(self.by_id.values(), key=lambda c: -float(np.dot(c.embedding, vector)))[:n]
        if not with_text:  # as the store: ids and cosines only
            return [StoredChunk(c.id, "", {}, 0, float(np.dot(c.embedding, vector)), None) for c in scored]
        return [
            StoredChunk(c.id, c.text, c.metadata, c.tokens, float(np.dot(c.embedding, vector)), c.embedding)
            for c in scored
        ]

    def keyword(self, text: str, n: int, *, where: Any, where_document: Any) -> list[tuple[str, float]]:
        return sorted(((i, s) for i, s in self.bm25.items() if s > 0), key=lambda p: -p[1])[:n]

    def chunks(self, ids: Sequence[str], *, with_text: bool) -> list[StoredChunk]:
        self.reads.append(list(ids))
        return [self.by_id[i] for i in ids if i in self.by_id and i not in self.rows_gone]


def _corpus() -> tuple[_Memory, np.ndarray]:
    rng = np.random.default_rng(11)
    vecs = _unit(rng, 30, 6)
    chunks = [
        StoredChunk(f"c{i:02d}", f"chunk {i}", {"source": f"doc{i % 3}", "chunk": i // 3}, 10 + i, None, vecs[i])
        for i in range(30)
    ]
    bm25 = {f"c{i:02d}": float(30 - i) if i % 4 == 0 else 0.0 for i in range(30)}
    return _Memory(chunks, bm25), _unit(rng, 1, 6)[0]


def _run(source: _Memory, q: np.ndarray, **options: Any) -> list[Candidate]:
    opts = SearchOptions(**options).resolved(query_is_text=True)
    fusion = rrf if opts.mode == "hybrid" else None
    ranked, _ = pipeline.run("q", q, opts, source, fusion=fusion, total=30, timings={})
    return ranked


def test_pipeline_dense_and_keyword_orders() -> None:
    source, q = _corpus()
    cos = {c.id: float(np.dot(c.embedding, q)) for c in source.by_id.values()}
    dense = _run(source, q, k=5, mode="dense")
    assert [c.chunk.id for c in dense] == sorted(cos, key=lambda i: -cos[i])[:5]
    assert source.dense_calls == [5]  # nothing pools: k candidates
    keyword = _run(source, q, k=3, mode="keyword")
    assert [c.chunk.id for c in keyword] == ["c00", "c04", "c08"]
    assert all(c.cosine == pytest.approx(cos[c.chunk.id]) for c in keyword)  # keyword-only hits get their cosine


def test_pipeline_hybrid_follows_the_fusion() -> None:
    source, q = _corpus()
    ranked = _run(source, q, k=6, mode="hybrid")
    dense = [(c.id, c.score or 0.0) for c in source.dense(q, 20, where=None, where_document=None, with_vectors=False)]
    keyword = source.keyword("q", 20, where=None, where_document=None)
    assert [c.chunk.id for c in ranked] == [i for i, _ in rrf("q", dense, keyword)[:6]]


def test_pipeline_threshold_cap_budget_in_order() -> None:
    source, q = _corpus()
    ranked = _run(source, q, k=4, mode="dense", min_score=0.0, max_per_source=1, budget=60)
    cos = {c.id: float(np.dot(c.embedding, q)) for c in source.by_id.values()}
    order = [i for i in sorted(cos, key=lambda i: -cos[i]) if cos[i] >= 0.0][:20]
    seen: set[str] = set()
    capped = []
    for i in order:
        src = source.by_id[i].metadata["source"]
        if src not in seen:
            seen.add(src)
            capped.append(i)
    kept, used = [], 0
    for i in capped[:4]:
        if used + source.by_id[i].tokens <= 60:
            kept.append(i)
            used += source.by_id[i].tokens
    assert [c.chunk.id for c in ranked] == kept


def test_pipeline_widens_the_pool_when_the_cap_leaves_too_few() -> None:
    source, q = _corpus()
    ranked = _run(source, q, k=3, mode="dense", max_per_source=1, fetch_k=3)
    assert len({c.chunk.source for c in ranked}) == 3  # three documents, one chunk each
    assert source.dense_calls[0] == 3 and source.dense_calls[-1] > 3


def test_query_vector_checks() -> None:
    timings: dict[str, float] = {}

    def embed(text: str) -> np.ndarray:
        return np.ones(4, dtype=np.float32) / 2

    kw: dict[str, Any] = {"dimension": 4, "collection": "c", "model_name": "m", "timings": timings}
    text, vec = pipeline.query_vector("cats?", "hybrid", embed, **kw)
    assert text == "cats?" and vec.tolist() == [0.5] * 4 and "embed" in timings
    text, vec = pipeline.query_vector([3.0, 0.0, 4.0, 0.0], "dense", embed, **kw)
    assert text == "" and vec.tolist() == pytest.approx([0.6, 0.0, 0.8, 0.0])
    with pytest.raises(InputError, match="The query is empty"):
        pipeline.query_vector("  ", "dense", embed, **kw)
    with pytest.raises(InputError, match="works in 'dense' mode only"):
        pipeline.query_vector([1.0, 0, 0, 0], "hybrid", embed, **kw)
    with pytest.raises(EmbeddingModelMismatchError, match="has 3 dimensions"):
        pipeline.query_vector([1.0, 0, 0], "dense", embed, **kw)
    with pytest.raises(InputError, match="zero or not finite"):
        pipeline.query_vector([0.0] * 4, "dense", embed, **kw)
    with pytest.raises(InputError, match="1-D"):
        pipeline.query_vector([[1.0] * 4], "dense", embed, **kw)
    with pytest.raises(InputError, match="non-empty str"):
        pipeline.query_vector(42, "dense", embed, **kw)


def test_a_plain_search_reads_back_only_the_keyword_candidates_it_keeps() -> None:
    source, q = _corpus()
    reads = source.reads
    assert [c.chunk.id for c in _run(source, q, k=3, mode="keyword", fetch_k=8)] == ["c00", "c04", "c08"]
    assert [len(r) for r in reads] == [3]  # of 8 keyword candidates, the 3 it returns
    # Two of them deleted between the reads: the next ones are read, the result still has k hits.
    for gone in ("c04", "c08"):
        del source.by_id[gone]
    reads.clear()
    assert [c.chunk.id for c in _run(source, q, k=3, mode="keyword", fetch_k=8)] == ["c00", "c12", "c16"]
    assert sum(len(r) for r in reads) == 5
    reads.clear()
    _run(source, q, k=3, mode="keyword", fetch_k=8, min_score=-1.0)  # a threshold may drop hits: read them all
    assert sum(len(r) for r in reads) == 8  # all 8 candidates (the 2 deleted ones asked too)


def test_a_plain_search_reads_the_texts_of_the_dense_hits_it_keeps_only() -> None:
    source, q = _corpus()
    reads = source.reads
    cos = {c.id: float(np.dot(c.embedding, q)) for c in source.by_id.values()}
    for mode in ("dense", "hybrid"):
        reads.clear()
        ranked = _run(source, q, k=4, mode=mode)
        assert sum(len(r) for r in reads) == 4  # of 20 candidates per side (hybrid), the 4 kept
        for c in ranked:  # each with its text, metadata and token count, and the index's cosine
            full = source.by_id[c.chunk.id]
            assert (c.chunk.text, c.chunk.metadata, c.chunk.tokens) == (full.text, full.metadata, full.tokens)
            assert c.cosine == pytest.approx(cos[c.chunk.id]) and c.chunk.score == pytest.approx(cos[c.chunk.id])
    # The best one's row deleted between the vector search and the read (the index still finds it): dropped,
    # and the next one read in its place.
    order = sorted(cos, key=lambda i: -cos[i])
    reads.clear()
    source.rows_gone.add(order[0])
    assert [c.chunk.id for c in _run(source, q, k=3, mode="dense", fetch_k=8)] == order[1:4]
    assert sum(len(r) for r in reads) == 4  # the 3 kept and the one that was gone


def test_relevance_scores_indexed_hits_by_id_and_tokenises_only_the_others() -> None:
    ranked = [_cand(f"c{i}", fused=float(3 - i)) for i in range(3)]
    for c in ranked:
        c.cosine = 0.5
    asked: list[list[str]] = []

    def score_texts(query: str, texts: Sequence[str]) -> list[float]:
        asked.append(list(texts))
        return [2.0 for _ in texts]

    def score_ids(query: str, ids: Sequence[str]) -> list[float | None]:
        return [None if i == "c1" else 2.0 for i in ids]  # c1 is not in the index

    cal = Calibration()
    by_id = score_relevance("chunk words", ranked, cal, score_texts, score_ids)
    assert asked[0] == [ranked[1].chunk.text]  # only the hit the index does not hold was tokenised
    both = [c.relevance for c in by_id]
    asked.clear()
    by_text = score_relevance("chunk words", ranked, cal, score_texts)
    assert asked[0] == [c.chunk.text for c in ranked] and [c.relevance for c in by_text] == both
