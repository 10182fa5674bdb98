"""What the LangChain and LlamaIndex adapters share: search options and result metadata (no framework imports).

Kept in one place so that both retrievers accept the same options and return the same metadata and scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shortlist.errors import ConfigError
from shortlist.search.options import OPTION_NAMES
from shortlist.types import Hit

__all__ = ["RESULT_KEYS", "SEARCH_OPTIONS", "merge_options", "result_metadata"]

#: Keys the retrievers add to each hit's metadata (a user key of the same name is kept as ``original_<key>``).
RESULT_KEYS = ("id", "score", "rank", "relevance")

#: Options of :meth:`shortlist.prefilter.Prefilter.search` a retriever holds and lets a call override
#: (``k`` first; the LlamaIndex retriever calls it ``similarity_top_k``): the fields of
#: :class:`~shortlist.search.options.SearchOptions`.
SEARCH_OPTIONS = OPTION_NAMES


def result_metadata(hit: Hit) -> dict[str, Any]:
    """The hit's metadata plus ``id``, ``score`` (cosine), ``rank`` (1-based) and ``relevance`` (when it has one).

    A user metadata key named ``id``, ``score`` or ``rank`` is kept as ``original_id`` (etc.) rather than lost.
    """
    meta = dict(hit.metadata)
    for key in RESULT_KEYS:
        if key in meta:
            meta[f"original_{key}"] = meta.pop(key)
    meta.update(id=hit.id, score=float(hit.score), rank=int(hit.rank))
    if hit.relevance is not None:
        meta["relevance"] = float(hit.relevance)
    return meta


def merge_options(
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    *,
    owner: str,
    ignore: tuple[str, ...] = (),
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``defaults`` updated with per-call ``overrides``, refusing names that are not search options.

    Args:
        defaults: The retriever's options, keyed by :data:`SEARCH_OPTIONS` names.
        overrides: Per-call values.
        owner: The retriever's name, for the error message.
        ignore: Keys the host framework leaves in the call's keyword arguments (dropped).
        aliases: Other accepted names for options, e.g. ``{"similarity_top_k": "k"}``.

    Returns:
        The keyword arguments for :meth:`Prefilter.search`.

    Raises:
        ConfigError: on a name that is not a search option (the message lists them).
    """
    options = dict(defaults)
    names = dict(aliases or {})
    for name, value in (overrides or {}).items():
        if name in ignore:
            continue
        target = names.get(name, name)
        if target not in SEARCH_OPTIONS:
            allowed = ", ".join([*names, *SEARCH_OPTIONS])
            msg = f"Unknown search option {name!r} for {owner}; use one of: {allowed}."
            raise ConfigError(msg)
        options[target] = value
    return options
