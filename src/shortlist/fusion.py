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

Example:
    ```python
    from shortlist.fusion import convex

    fused = convex("q", [("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 3.0)], weight=0.7)
    print([(i, round(s, 3)) for i, s in fused])
    # [('a', 0.7), ('b', 0.3), ('c', 0.129)]
    ```
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.text import split_sentences

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.keyword import KeywordIndex

__all__ = [
    "CALIBRATION_VERSION",
    "CJK_PRIOR_WEIGHT",
    "MIN_PROBES",
    "PRIOR_WEIGHT",
    "PROBES",
    "AdaptiveFusion",
    "Calibration",
    "Probe",
    "calibrate",
    "convex",
    "dense_weight",
    "make_probes",
    "script_of",
]

logger = logging.getLogger(__name__)

#: Probes drawn from a collection (at most), and the fewest a script needs for its own weight.
PROBES = 100
MIN_PROBES = 30
#: Dense weight without evidence from probes (Latin-script queries) and for CJK queries over a corpus without
#: CJK probes.
PRIOR_WEIGHT = 0.9
CJK_PRIOR_WEIGHT = 0.25
#: Ranked list depth per side for the probes (as a search with k=10 and a pooled fetch would draw).
PROBE_DEPTH = 40
SEED = 0
CALIBRATION_VERSION = 1
_CALIBRATION_FILE = "calibration.json"

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def script_of(text: str) -> str:
    """``"cjk"`` if at least a third of the text's letters are CJK (Chinese, Japanese kana, Korean), else ``"latin"``.

    (Any non-CJK script counts as ``"latin"``: the bucket of the scripts the model's vocabulary reads in words.)
    """
    letters = len(_LETTER.findall(text))
    if letters == 0:
        return "latin"
    return "cjk" if len(_CJK.findall(text)) * 3 >= letters else "latin"


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
        query: The question (unused; kept for the :class:`~shortlist.prefilter.Fusion` signature).
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


def combine(dense: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Sum each id's contributions from the two ranked lists; best first, ties broken by dense rank, then keyword rank.

    The one merging step of every fusion (:func:`convex` here, :func:`~shortlist.prefilter.rrf`): a fusion turns
    each list into per-id contributions and this adds them up.

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


# ---------------------------------------------------------------------------------------------- probes
@dataclass(frozen=True)
class Probe:
    """One self-supervised query: a sentence of a chunk, answered by the chunk without that sentence.

    Attributes:
        chunk_id: The chunk the sentence was taken from.
        source: Its document's id (any chunk of that document counts as found).
        query: The sentence.
        rest: The chunk's text without the sentence.
        script: :func:`script_of` the sentence.
    """

    chunk_id: str
    source: str
    query: str
    rest: str
    script: str


def make_probes(
    chunks: Sequence[tuple[str, str, str]], *, n: int = PROBES, seed: int = SEED, min_chars: int = 12
) -> list[Probe]:
    """Draw up to ``n`` probes from ``(id, source, text)`` chunks (deterministic for a given ``seed``).

    A chunk qualifies if it has at least two sentences of ``min_chars`` characters or more; the probe's sentence is
    drawn among those, and the rest of the chunk (all its other sentences) is the answer.
    """
    rng = np.random.default_rng(seed)
    order = sorted(range(len(chunks)), key=lambda i: chunks[i][0])  # the ids' order, not the store's
    rng.shuffle(order)
    probes: list[Probe] = []
    for i in order:
        if len(probes) >= n:
            break
        chunk_id, source, text = chunks[i]
        sentences = split_sentences(text)
        long_ones = [j for j, s in enumerate(sentences) if len(s) >= min_chars]
        if len(sentences) < 2 or not long_ones:
            continue
        pick = long_ones[int(rng.integers(len(long_ones)))]
        rest = " ".join(s for j, s in enumerate(sentences) if j != pick)
        if len(rest) < min_chars:
            continue
        query = sentences[pick]
        probes.append(Probe(chunk_id, source, query, rest, script_of(query)))
    return probes


# ---------------------------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """Dense weights of a collection, by query script, and how they were found.

    Attributes:
        fingerprint: What the calibration was computed from (the keyword index's fingerprint).
        weights: Script (``"latin"``, ``"cjk"``) -> dense weight, for the scripts with enough probes.
        probes: Script -> probes used.
        mrr: Script -> ``{"dense": ..., "keyword": ..., "fused": ...}``: the probes' MRR@10 with dense only,
            keyword only and the chosen weight.
        seconds: Time taken.
        version: :data:`CALIBRATION_VERSION` of the procedure.
    """

    fingerprint: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)
    probes: Mapping[str, int] = field(default_factory=dict)
    mrr: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    version: int = CALIBRATION_VERSION

    def weight_for(self, query: str) -> float:
        """The dense weight for ``query``: its script's calibrated weight, else the prior (see the module)."""
        script = script_of(query)
        if script in self.weights:
            return float(self.weights[script])
        return CJK_PRIOR_WEIGHT if script == "cjk" else PRIOR_WEIGHT

    def save(self, folder: str | Path) -> None:
        """Write ``calibration.json`` into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (_CALIBRATION_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(folder / _CALIBRATION_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> Calibration | None:
        """Read ``calibration.json`` from ``folder``; ``None`` if missing, unreadable or of another version."""
        try:
            raw = json.loads((Path(folder) / _CALIBRATION_FILE).read_text(encoding="utf-8"))
            cal = cls(
                fingerprint=str(raw["fingerprint"]),
                weights={str(k): float(v) for k, v in raw["weights"].items()},
                probes={str(k): int(v) for k, v in raw["probes"].items()},
                mrr={str(k): {str(a): float(b) for a, b in v.items()} for k, v in raw["mrr"].items()},
                seconds=float(raw.get("seconds", 0.0)),
                version=int(raw["version"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.debug("No usable calibration in %s (%s)", folder, exc)
            return None
        return cal if cal.version == CALIBRATION_VERSION else None


def _rank_lists(
    probes: Sequence[Probe],
    index: KeywordIndex,
    encoder: Encoder,
    dense_search: Callable[[np.ndarray[Any, np.dtype[np.float32]], int], list[tuple[str, float]]],
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


def dense_weight(mrr_dense: float, mrr_keyword: float, script: str = "latin") -> float:
    """The dense weight from the two sides' probe MRR: ``mrr_dense / (mrr_dense + mrr_keyword)``, rounded to 0.01.

    Each side is weighted in proportion to how well it found the probes' chunks on its own (a performance-weighted
    linear combination). When neither side found anything the prior of the script is used.
    """
    total = mrr_dense + mrr_keyword
    if total <= 0:
        return CJK_PRIOR_WEIGHT if script == "cjk" else PRIOR_WEIGHT
    return round(mrr_dense / total, 2)


def calibrate(
    chunks: Sequence[tuple[str, str, str]],
    index: KeywordIndex,
    encoder: Encoder,
    dense_search: Callable[[np.ndarray[Any, np.dtype[np.float32]], int], list[tuple[str, float]]],
    *,
    fingerprint: str = "",
    n_probes: int = PROBES,
    seed: int = SEED,
) -> Calibration:
    """Calibrate the dense weight of a collection from probes drawn from its own chunks (see the module).

    Args:
        chunks: ``(id, source, text)`` of every chunk in the collection.
        index: The collection's keyword index.
        encoder: The collection's encoder (probes are embedded with it).
        dense_search: ``(query vector, n) -> [(id, cosine)]`` best first, over the collection.
        fingerprint: Recorded in the result (what it was computed from).
        n_probes: Probes to draw at most.
        seed: The draw's seed.

    Returns:
        The :class:`Calibration`.
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


class AdaptiveFusion:
    """The default hybrid fusion: :func:`convex` with the dense weight of the query's script from a calibration.

    Args:
        calibration: A :class:`Calibration`, or a callable returning the current one (a
            :class:`~shortlist.prefilter.Prefilter` passes its own, kept up to date with the collection). ``None``:
            the priors only.
    """

    def __init__(self, calibration: Calibration | Callable[[], Calibration] | None = None) -> None:
        self._calibration = calibration

    def calibration(self) -> Calibration:
        """The calibration in use."""
        cal = self._calibration
        if cal is None:
            return Calibration()
        return cal if isinstance(cal, Calibration) else cal()

    def weight(self, query: str) -> float:
        """The dense weight this fusion gives ``query``."""
        return self.calibration().weight_for(query)

    def __call__(
        self, query: str, dense: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]]
    ) -> list[tuple[str, float]]:
        """Fuse the lists (the :class:`~shortlist.prefilter.Fusion` protocol)."""
        return convex(query, dense, keyword, weight=self.weight(query))

    def __repr__(self) -> str:
        return f"AdaptiveFusion({self._calibration!r})"
