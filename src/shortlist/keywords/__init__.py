"""The keyword room: BM25 index, hybrid calibration, and the copies of both saved beside a collection.

The BM25 index is in :mod:`.bm25`, the calibration's value in :mod:`.calibration`, and the copies of both kept up to
date with a collection and saved beside it in :mod:`.cache`.

``shortlist.keyword`` (the old module, whose name shadows the standard library's ``keyword``) re-exports
:mod:`.bm25`.
"""

from __future__ import annotations

from shortlist.keywords.bm25 import BM25_B, BM25_K1, INDEX_VERSION, KeywordIndex, tokenize
from shortlist.keywords.cache import KeywordCache
from shortlist.keywords.calibration import Calibration, Probe, make_probes, script_of

__all__ = [
    "BM25_B",
    "BM25_K1",
    "INDEX_VERSION",
    "Calibration",
    "KeywordCache",
    "KeywordIndex",
    "Probe",
    "make_probes",
    "script_of",
    "tokenize",
]
