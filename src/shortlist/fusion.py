"""Adaptive fusion for hybrid search: weights calibrated from the corpus itself, chosen per query by its script.

Fixed-weight fusion of a dense and a BM25 ranking helps on some corpora and hurts on others: with an English
sentence-embedding model, Chinese text is nearly opaque to the dense side (keyword must carry the search), while on
short paraphrased FAQ questions BM25 finds few shared words (the dense side must). :class:`AdaptiveFusion` fuses the
two lists by a convex combination of their scores, each scaled to [0, 1] within its list (:func:`convex`), with a
dense weight that comes from a :class:`Calibration` of the collection:

1. **Probes, no labels** (:func:`make_probes`): up to :data:`PROBES` chunks (fixed seed) that have at least two
   sentences; one sentence of each becomes a query, and the answer is that chunk *with the sentence taken out*
   (the inverse cloze task of Lee et al. 2019): neither side can win by matching the query verbatim, so the probe
   measures what each side knows about the chunk's topic, as a real question does.
2. **Scores** (:func:`calibrate`): each probe is searched by both sides (the held-out chunk scored by the same
   function as the rest: the same vector space, BM25 with the index's statistics). Each side's mean reciprocal
   rank of the probe's document (MRR@10) sets the weights in proportion (:func:`dense_weight`).
   Probes are grouped by script (CJK or not): a query written in CJK script
   uses the weight of the corpus's CJK chunks, other queries the weight of the rest, so a mixed Chinese/English
   collection gets both right.
3. **No evidence** (a script with fewer than :data:`MIN_PROBES` probes, e.g. a FAQ of one-sentence questions): the
   weight is :data:`PRIOR_WEIGHT` (dense-leaning: the dense model is the stronger ranker wherever it reads the
   language), except that a CJK query over a corpus without CJK probes gets :data:`CJK_PRIOR_WEIGHT` (the model's
   English vocabulary reads little Chinese).

The calibration is fixed across collections except for what it reads from the collection's own chunks: it never sees
an evaluation set's labels. :class:`~shortlist.prefilter.Prefilter` computes it with the keyword index, keeps it
beside the index (``shortlist-keyword/<collection>/calibration.json`` in an embedded store), and redoes it whenever
the index is rebuilt because the collection changed.

Where the code lives: the fusions in :mod:`shortlist.search.fusion`, the calibration's value and probes in
:mod:`shortlist.keywords.calibration`, computing it in :mod:`shortlist.search.calibration`. This module re-exports
them under their old names.

Example:
    ```python
    from shortlist.fusion import convex

    fused = convex("q", [("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 3.0)], weight=0.7)
    print([(i, round(s, 3)) for i, s in fused])
    # [('a', 0.7), ('b', 0.3), ('c', 0.129)]
    ```
"""

from __future__ import annotations

from shortlist.keywords.calibration import (
    CALIBRATION_FILE as _CALIBRATION_FILE,
)
from shortlist.keywords.calibration import (
    CALIBRATION_VERSION,
    CJK_PRIOR_WEIGHT,
    MIN_PROBES,
    PRIOR_WEIGHT,
    PROBE_DEPTH,
    PROBES,
    SEED,
    Calibration,
    Probe,
    dense_weight,
    make_probes,
    script_of,
)
from shortlist.search.calibration import _insert, _mrr, _rank_lists, calibrate
from shortlist.search.fusion import RRF_K, AdaptiveFusion, Fusion, combine, convex, rrf

__all__ = [
    "CALIBRATION_VERSION",
    "CJK_PRIOR_WEIGHT",
    "MIN_PROBES",
    "PRIOR_WEIGHT",
    "PROBES",
    "PROBE_DEPTH",
    "RRF_K",
    "SEED",
    "AdaptiveFusion",
    "Calibration",
    "Fusion",
    "Probe",
    "calibrate",
    "combine",
    "convex",
    "dense_weight",
    "make_probes",
    "rrf",
    "script_of",
]

_ = (_CALIBRATION_FILE, _insert, _mrr, _rank_lists)  # old private names, kept importable
