"""SearchOptions (checks, defaults, fetch size) and the types' JSON serialisation, without the model or Chroma."""

from __future__ import annotations

import json
import math

import pytest

from shortlist._adapters import SEARCH_OPTIONS
from shortlist.config import DEFAULT_K, DEFAULT_MODE
from shortlist.errors import ConfigError, InputError
from shortlist.search.options import OPTION_NAMES, SEARCH_MODES, SearchOptions, check_where_document
from shortlist.types import Hit, SearchStats, Shortlist


def test_defaults_are_prefilter_search_defaults() -> None:
    opts = SearchOptions()
    assert opts.k == DEFAULT_K
    assert opts.mode is None
    assert (opts.mmr, opts.mmr_lambda, opts.fetch_k, opts.max_per_source, opts.budget) == (False, 0.5, None, None, None)
    # the retrievers' option list, and the order Prefilter.search passes them in
    expected = ("k", "min_score", "min_relevance", "where", "where_document", "mode", "mmr", "mmr_lambda", "fetch_k")
    assert OPTION_NAMES == SEARCH_OPTIONS == (*expected, "max_per_source", "budget")
    assert SEARCH_MODES == ("dense", "keyword", "hybrid")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a positive int, got 0."),
        ({"k": True}, "k must be a positive int, got True."),
        ({"k": 2.0}, "k must be a positive int, got 2.0."),
        ({"mode": "vector"}, "mode must be one of 'dense', 'keyword', 'hybrid', got 'vector'."),
        ({"mmr_lambda": 1.5}, "mmr_lambda must be in [0, 1], got 1.5."),
        ({"mmr_lambda": "0.5"}, "mmr_lambda must be in [0, 1], got '0.5'."),
        ({"fetch_k": 0}, "fetch_k must be a positive int or None, got 0."),
        ({"max_per_source": False}, "max_per_source must be a positive int or None, got False."),
        ({"budget": -1}, "budget must be a non-negative int (model tokens) or None, got -1."),
        ({"min_score": math.nan}, "min_score must be a number in [-1, 1] or None, got nan."),
        ({"min_score": "0.3"}, "min_score must be a number in [-1, 1] or None, got '0.3'."),
    ],
)
def test_bad_options_are_refused_with_the_old_messages(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SearchOptions(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_budget_zero_and_lambda_bounds_are_fine() -> None:
    assert SearchOptions(budget=0, mmr_lambda=0).budget == 0
    assert SearchOptions(mmr_lambda=1.0, min_score=-1).min_score == -1


def test_resolved_mode() -> None:
    assert SearchOptions().resolved(query_is_text=True).mode == DEFAULT_MODE
    assert SearchOptions().resolved(query_is_text=False).mode == "dense"
    assert SearchOptions(mode="keyword").resolved(query_is_text=False).mode == "keyword"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"k": 3, "mode": "dense"}, 3),  # nothing after gathering drops candidates: k
        ({"k": 3, "mode": "hybrid"}, 20),  # fusion pools: max(4k, 20)
        ({"k": 10, "mode": "dense", "mmr": True}, 40),
        ({"k": 3, "mode": "dense", "budget": 100}, 20),
        ({"k": 3, "mode": "dense", "min_score": 0.1}, 20),
        ({"k": 3, "mode": "keyword", "max_per_source": 1}, 20),
        ({"k": 3, "mode": "dense", "fetch_k": 7}, 7),
        ({"k": 9, "mode": "hybrid", "fetch_k": 2}, 9),  # never fewer than k
    ],
)
def test_fetch_size(kwargs: dict[str, object], expected: int) -> None:
    assert SearchOptions(**kwargs).fetch_size() == expected  # type: ignore[arg-type]


def test_as_kwargs_round_trips() -> None:
    opts = SearchOptions(k=2, where={"lang": "en"}, mode="dense", budget=50)
    assert SearchOptions(**opts.as_kwargs()) == opts


def test_check_where_document() -> None:
    check_where_document(None)
    check_where_document({"$contains": "x"})
    for bad in ({}, "python", ["$contains"]):
        with pytest.raises(InputError, match="where_document must be a non-empty dict"):
            check_where_document(bad)  # type: ignore[arg-type]


def test_shortlist_to_dict() -> None:
    hits = (
        Hit("c1", "Cats sleep.", 0.123456789, {"source": "doc-a", "chunk": 0, "tags": ["x"]}, rank=1),
        Hit("c2", "Dogs bark.", -0.5, {}, rank=2),
    )
    stats = SearchStats(
        chunks_total=10, candidates=4, corpus_tokens=200, kept_tokens=7, timings_ms={"embed": 1.23456, "total": 2}
    )
    out = Shortlist("pets?", hits, stats).to_dict()
    assert out == {
        "query": "pets?",
        "hits": [
            {
                "rank": 1,
                "id": "c1",
                "score": 0.123457,
                "relevance": None,
                "source": "doc-a",
                "text": "Cats sleep.",
                "metadata": {"source": "doc-a", "chunk": 0, "tags": ["x"]},
            },
            {
                "rank": 2,
                "id": "c2",
                "score": -0.5,
                "relevance": None,
                "source": "c2",
                "text": "Dogs bark.",
                "metadata": {},
            },
        ],
        "stats": {
            "chunks_total": 10,
            "candidates": 4,
            "corpus_tokens": 200,
            "kept_tokens": 7,
            "saved_share": 0.965,
            "timings_ms": {"embed": 1.235, "total": 2.0},
        },
    }
    assert json.loads(json.dumps(out)) == out
    assert list(out["hits"][0]) == ["rank", "id", "score", "relevance", "source", "text", "metadata"]
    assert hits[0].to_dict() == out["hits"][0]
