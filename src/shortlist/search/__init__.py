"""The query path: options, fusion, the stages of a search and the pipeline that runs them (see :mod:`.pipeline`).

Every stage is a plain function over plain data (ids, scores, vectors): none talks to Chroma or runs the model.
"""

from __future__ import annotations

from shortlist.search.options import SEARCH_MODES, SearchOptions

__all__ = ["SEARCH_MODES", "SearchOptions"]
