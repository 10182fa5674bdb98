"""Prefilter.search_with (a SearchOptions value) and the default fusion's calibration, with the real model and an
in-memory Chroma over Python's reference docs."""

from __future__ import annotations

from pydoc_data.topics import topics

import pytest

from shortlist import Encoder, Prefilter
from shortlist.errors import ConfigError
from shortlist.fusion import AdaptiveFusion
from shortlist.prefilter import rrf
from shortlist.search.options import SearchOptions

TOPICS = ["assert", "break", "class", "dict", "exceptions", "for", "import", "lambda", "try", "while", "with", "yield"]


@pytest.fixture(scope="module")
def pf(encoder: Encoder) -> Prefilter:
    p = Prefilter.in_memory("options", encoder=encoder)
    p.add_documents([{"id": n, "text": topics[n], "metadata": {"topic": n}} for n in TOPICS])
    return p


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"mode": "dense", "k": 6},
        {"mode": "keyword", "k": 3},
        {"mode": "hybrid", "k": 5, "mmr": True, "mmr_lambda": 0.3},
        {"k": 6, "max_per_source": 1, "budget": 400},
        {"mode": "dense", "min_score": 0.3, "where": {"topic": {"$in": ["try", "while", "for"]}}},
    ],
)
def test_search_with_options_is_search_with_keywords(pf: Prefilter, options: dict[str, object]) -> None:
    question = "how do I stop a loop early?"
    by_keywords = pf.search(question, **options)  # type: ignore[arg-type]
    by_value = pf.search_with(question, SearchOptions(**options))  # type: ignore[arg-type]
    assert [(h.id, h.score, h.rank) for h in by_value] == [(h.id, h.score, h.rank) for h in by_keywords]
    assert by_value.stats.candidates == by_keywords.stats.candidates
    assert by_value.stats.kept_tokens == by_keywords.stats.kept_tokens == sum(h.tokens or 0 for h in by_value)


def test_hits_carry_their_ingest_token_count(pf: Prefilter, encoder: Encoder) -> None:
    for hit in pf.search("exception handling", k=5):
        assert hit.tokens == encoder.count_tokens(hit.text)


def test_default_fusion_holds_the_collections_current_calibration(pf: Prefilter) -> None:
    fusion = pf.fusion
    assert isinstance(fusion, AdaptiveFusion)
    assert fusion.calibration() == pf.calibration()
    assert fusion.calibration() is pf._keywords.current_calibration(pf._calibrate)  # the kept one, not recomputed
    with pytest.raises(ConfigError, match="takes a Calibration value"):
        AdaptiveFusion(pf.calibration)  # type: ignore[arg-type]


def test_fusion_can_be_set_and_reset(encoder: Encoder, pf: Prefilter) -> None:
    p = Prefilter(store=pf.store, encoder=encoder)
    question = "context manager enter exit"
    default = [h.id for h in p.search(question, k=5, mode="hybrid")]
    p.fusion = rrf
    assert p.fusion is rrf
    dense = [(h.id, h.score) for h in p.search(question, k=20, mode="dense")]
    keyword = p.keyword_index().search(question, 20)
    assert [h.id for h in p.search(question, k=5, mode="hybrid")] == [i for i, _ in rrf(question, dense, keyword)[:5]]
    p.fusion = None
    assert isinstance(p.fusion, AdaptiveFusion)
    assert [h.id for h in p.search(question, k=5, mode="hybrid")] == default
