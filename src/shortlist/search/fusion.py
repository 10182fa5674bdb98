"""How hybrid search merges its dense and keyword lists: one function per fusion mode, and :class:`AdaptiveFusion`.

Every fusion takes the question and both lists, each ``(id, raw score)`` best first (cosine similarity for the dense
list, BM25 score for the keyword list), and returns ``(id, fused score)`` best first (the :class:`Fusion` protocol).
Each turns its lists into per-id contributions and :func:`combine` adds them up:

- :func:`rrf`: reciprocal rank fusion, ``sum(weight / (k + rank))`` (fixed weights, scores ignored);
- :func:`convex`: a convex combination of the two lists' scores, each scaled to [0, 1] within its list;
- :class:`AdaptiveFusion` (the default): :func:`convex` with the dense weight a
  :class:`~shortlist.keywords.calibration.Calibration` of the collection gives the query's script.

The calibration is an input: an :class:`AdaptiveFusion` holds one value and never computes one while it fuses
(:meth:`Prefilter.search <shortlist.prefilter.Prefilter.search>` obtains the collection's before it searches).
See :mod:`shortlist.fusion` for how the calibration is found.

Example:
    ```python
    from shortlist.search.fusion import convex, rrf

    print([(i, round(s, 3)) for i, s in convex("q", [("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 3.0)], weight=0.7)])
    # [('a', 0.7), ('b', 0.3), ('c', 0.129)]
    print([i for i, _ in rrf("q", [("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 3.0)])])
    # ['b', 'a', 'c']
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shortlist.errors import ConfigError
from shortlist.keywords.calibration import PRIOR_WEIGHT, Calibration

__all__ = ["RRF_K", "AdaptiveFusion", "Fusion", "combine", "convex", "rrf"]

#: The RRF constant (60, as in Cormack et al. 2009).
RRF_K = 60

Ranked = Sequence[tuple[str, float]]


class Fusion(Protocol):
    """How hybrid search merges its two candidate lists.

    Called with the question and both lists, each ``(id, raw score)`` best first (cosine similarity for the dense
    list, BM25 score for the keyword list); returns ``(id, fused score)`` best first. Any id may appear in one list
    only.
    """

    def __call__(
        self, query: str, dense: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]]
    ) -> list[tuple[str, float]]:
        """Fuse the lists."""
        ...


def combine(dense: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Sum each id's contributions from the two ranked lists; best first, ties broken by dense rank, then keyword rank.

    The one merging step of every fusion (:func:`convex`, :func:`rrf`): a fusion turns each list into per-id
    contributions and this adds them up.

    Args:
        dense: ``(id, contribution)`` in the dense list's rank order; empty leaves the list out.
        keyword: ``(id, contribution)`` in the keyword list's rank order; empty leaves the list out.

    Returns:
        ``(id, fused score)``, best first.
    """
    scores: dict[str, float] = {}
    first: dict[str, tuple[int, int]] = {}
    big = len(dense) + len(keyword) + 1  # ranks past every real one: "not in this list"
    for rank, (id_, part) in enumerate(dense, start=1):
        scores[id_] = scores.get(id_, 0.0) + part
        first[id_] = (rank, big)
    for rank, (id_, part) in enumerate(keyword, start=1):
        scores[id_] = scores.get(id_, 0.0) + part
        first[id_] = (first.get(id_, (big, big))[0], rank)
    return sorted(scores.items(), key=lambda item: (-item[1], first[item[0]]))


def rrf(
    query: str,
    dense: Sequence[tuple[str, float]],
    keyword: Sequence[tuple[str, float]],
    *,
    k: int = RRF_K,
    weights: tuple[float, float] = (1.0, 1.0),
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``sum(weight / (k + rank))`` over the lists an id is in (ranks from 1).

    Ties are broken by the dense rank, then the keyword rank.

    Args:
        query: The question (unused by plain RRF; adaptive fusions use it).
        dense: ``(id, cosine)`` best first.
        keyword: ``(id, bm25)`` best first.
        k: The RRF constant (60, as in Cormack et al. 2009).
        weights: Weights of the dense and keyword lists.

    Returns:
        ``(id, fused score)``, best first.
    """
    del query

    def parts(ranked: Sequence[tuple[str, float]], weight: float) -> list[tuple[str, float]]:
        # a list of weight 0 is left out entirely (from the scores and from the tie-break)
        return [(id_, weight / (k + rank)) for rank, (id_, _) in enumerate(ranked, start=1)] if weight > 0 else []

    return combine(parts(dense, weights[0]), parts(keyword, weights[1]))


def convex(
    query: str,
    dense: Sequence[tuple[str, float]],
    keyword: Sequence[tuple[str, float]],
    *,
    weight: float = PRIOR_WEIGHT,
) -> list[tuple[str, float]]:
    """Convex combination of the two lists' scores, each scaled to [0, 1] within its list.

    Dense scores are min-max scaled over the list (its last score maps to 0, its first to 1); BM25 scores are
    divided by the list's best (BM25's floor is 0: no shared term). An id missing from a list gets 0 from it, so an
    empty list leaves the other list's order unchanged. Ties are broken by the dense rank, then the keyword rank.

    Args:
        query: The question (unused; kept for the :class:`Fusion` signature).
        dense: ``(id, cosine)`` best first.
        keyword: ``(id, bm25)`` best first.
        weight: The dense list's weight in [0, 1]; the keyword list gets ``1 - weight``.

    Returns:
        ``(id, fused score)``, best first.
    """
    del query
    dense_parts: list[tuple[str, float]] = []
    if dense and weight > 0:
        hi, lo = float(dense[0][1]), float(dense[-1][1])
        span = hi - lo
        dense_parts = [(id_, weight * ((float(s) - lo) / span if span > 0 else 1.0)) for id_, s in dense]
    keyword_parts: list[tuple[str, float]] = []
    if keyword and weight < 1:
        top = float(keyword[0][1])
        keyword_parts = [(id_, (1.0 - weight) * (float(s) / top if top > 0 else 1.0)) for id_, s in keyword]
    return combine(dense_parts, keyword_parts)


class AdaptiveFusion:
    """The default hybrid fusion: :func:`convex` with the dense weight of the query's script from a calibration.

    Args:
        calibration: A :class:`~shortlist.keywords.calibration.Calibration` (a value: the fusion never computes
            one). ``None``: the priors only. A :class:`~shortlist.prefilter.Prefilter` built without a fusion uses
            one of these over the collection's current :meth:`~shortlist.prefilter.Prefilter.calibration`.

    Raises:
        ConfigError: if ``calibration`` is not a ``Calibration`` (a callable is refused: it could start a
            calibration in the middle of a query; pass ``prefilter.calibration()`` instead).
    """

    def __init__(self, calibration: Calibration | None = None) -> None:
        if calibration is not None and not isinstance(calibration, Calibration):
            msg = (
                f"AdaptiveFusion takes a Calibration value or None, got {type(calibration).__name__}: compute it "
                "first (e.g. prefilter.calibration()) and pass the result."
            )
            raise ConfigError(msg)
        self._calibration = calibration if calibration is not None else Calibration()

    def calibration(self) -> Calibration:
        """The calibration in use."""
        return self._calibration

    def weight(self, query: str) -> float:
        """The dense weight this fusion gives ``query``."""
        return self._calibration.weight_for(query)

    def __call__(
        self, query: str, dense: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]]
    ) -> list[tuple[str, float]]:
        """Fuse the lists (the :class:`Fusion` protocol)."""
        return convex(query, dense, keyword, weight=self.weight(query))

    def __repr__(self) -> str:
        return f"AdaptiveFusion({self._calibration!r})"
