"""The options of one search in one frozen value, which every caller builds a search from.

:meth:`Prefilter.search <shortlist.prefilter.Prefilter.search>`, both framework retrievers, the CLI and the server
build on :class:`SearchOptions`.

An option is added here, once: its field, its default and its check. :data:`SEARCH_MODES` is the one spelling of the
search modes (the names of :data:`shortlist.config.SearchMode`).

Example:
    ```python
    from shortlist.search.options import SearchOptions

    options = SearchOptions(k=3, mode="keyword", max_per_source=1)
    print(options.k, options.mode, options.fetch_size())
    # 3 keyword 20
    ```
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, get_args

from shortlist.config import DEFAULT_K, DEFAULT_MODE, SearchMode
from shortlist.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_MMR_LAMBDA",
    "OPTION_NAMES",
    "SEARCH_MODES",
    "SUGGESTED_MIN_RELEVANCE",
    "SearchOptions",
    "check_where_document",
]

#: The search modes, in the order they are listed to users: vectors only, BM25 only, both fused.
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
#: MMR's default trade-off (1.0 pure relevance, 0.0 pure diversity).
DEFAULT_MMR_LAMBDA = 0.5
#: The ``min_relevance`` the docs advise and the demo uses: a hit with at least a 30% chance of being right, by the
#: collection's own calibration (see ``docs/hybrid.md``). ``search`` itself keeps every hit unless asked.
SUGGESTED_MIN_RELEVANCE = 0.3


@dataclass(frozen=True)
class SearchOptions:
    """Every option of one search (the keyword arguments of ``Prefilter.search``), checked when built.

    Attributes:
        k: Most hits to return (default 4).
        min_score: Drop hits whose cosine similarity is below this (in [-1, 1]); ``None``: keep all.
        min_relevance: Drop hits whose :attr:`~shortlist.types.Hit.relevance` is below this (in [0, 1]); ``None``:
            keep all. Applied to the ``k`` best hits (before the token budget).
        where: Chroma metadata filter, e.g. ``{"lang": "en"}``.
        where_document: Chroma document filter, e.g. ``{"$contains": "python"}``.
        mode: ``"hybrid"``, ``"dense"`` or ``"keyword"``; ``None``: ``"hybrid"`` for a question, ``"dense"`` for a
            query vector (see :meth:`resolved`).
        mmr: Re-rank for diversity by maximal marginal relevance.
        mmr_lambda: MMR trade-off: 1.0 is pure relevance, 0.0 pure diversity (default 0.5).
        fetch_k: Candidates to draw from each index (default: see :meth:`fetch_size`).
        max_per_source: Most hits from one document.
        budget: Most word pieces (model tokens) in the hits' texts.

    Raises:
        ConfigError: on a bad option (``k`` < 1, an unknown mode, ``mmr_lambda`` outside [0, 1]...), with the same
            messages ``Prefilter.search`` has always given.

    The field order is the order the retrievers list their options in (:data:`OPTION_NAMES`).
    """

    k: int = DEFAULT_K
    min_score: float | None = None
    min_relevance: float | None = None
    where: Mapping[str, Any] | None = None
    where_document: Mapping[str, Any] | None = None
    mode: SearchMode | None = None
    mmr: bool = False
    mmr_lambda: float = DEFAULT_MMR_LAMBDA
    fetch_k: int | None = None
    max_per_source: int | None = None
    budget: int | None = None

    def __post_init__(self) -> None:
        k = self.k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            msg = f"k must be a positive int, got {k!r}."
            raise ConfigError(msg)
        if self.mode is not None and self.mode not in SEARCH_MODES:
            msg = f"mode must be one of {', '.join(map(repr, SEARCH_MODES))}, got {self.mode!r}."
            raise ConfigError(msg)
        lam = self.mmr_lambda
        if not isinstance(lam, float | int) or not 0.0 <= float(lam) <= 1.0:
            msg = f"mmr_lambda must be in [0, 1], got {lam!r}."
            raise ConfigError(msg)
        for name, value in (("fetch_k", self.fetch_k), ("max_per_source", self.max_per_source)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                msg = f"{name} must be a positive int or None, got {value!r}."
                raise ConfigError(msg)
        budget = self.budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            msg = f"budget must be a non-negative int (model tokens) or None, got {budget!r}."
            raise ConfigError(msg)
        min_score = self.min_score
        if min_score is not None and (not isinstance(min_score, float | int) or math.isnan(float(min_score))):
            msg = f"min_score must be a number in [-1, 1] or None, got {min_score!r}."
            raise ConfigError(msg)

        rel = self.min_relevance
        if rel is not None and (
            isinstance(rel, bool) or not isinstance(rel, float | int) or not 0.0 <= float(rel) <= 1.0
        ):
            msg = f"min_relevance must be a number in [0, 1] or None, got {rel!r}."
            raise ConfigError(msg)

    def resolved(self, query_is_text: bool) -> SearchOptions:
        """These options with :attr:`mode` set: as given, else the default for a question or a query vector."""
        if self.mode is not None:
            return self
        return replace(self, mode=DEFAULT_MODE if query_is_text else "dense")

    @property
    def pooled(self) -> bool:
        """Whether a stage after the gathering drops or re-orders candidates (so more are drawn than ``k``)."""
        return (
            self.mmr
            or self.max_per_source is not None
            or self.budget is not None
            or self.min_score is not None
            or self.mode == "hybrid"
        )

    def fetch_size(self) -> int:
        """Candidates drawn from each index: ``fetch_k`` if given, else ``max(4 * k, 20)`` when pooled, else ``k``.

        Never fewer than ``k``.
        """
        if self.fetch_k is not None:
            return max(self.k, self.fetch_k)
        return max(self.k, max(4 * self.k, 20) if self.pooled else self.k)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of ``Prefilter.search`` (every field, by name)."""
        return {name: getattr(self, name) for name in OPTION_NAMES}


#: The options' names, in field order (``k`` first).
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SearchOptions))


def check_where_document(where_document: Mapping[str, Any] | None) -> None:
    """Refuse a document filter that is not a non-empty mapping (``None`` is fine: no filter).

    Raises:
        InputError: on an empty or non-mapping filter.
    """
    if where_document is not None and (not isinstance(where_document, Mapping) or not where_document):
        msg = f"where_document must be a non-empty dict like {{'$contains': 'word'}}, got {where_document!r}."
        raise InputError(msg)
