"""The hybrid fusion's calibration as a value: weights by query script, the probes it is computed from, its file.

What a :class:`Calibration` holds and how it is read and written lives here, beside the keyword index it belongs
to; computing one (searching the probes on both sides) is part of the query path:
:func:`shortlist.search.calibration.calibrate`. See :mod:`shortlist.fusion` for the method.

Example:
    ```python
    from shortlist.keywords.calibration import Calibration, script_of

    cal = Calibration(weights={"cjk": 0.2})
    print(script_of("黑豹队的防守"), cal.weight_for("黑豹队的防守"), cal.weight_for("the defence"))
    # cjk 0.2 0.9
    ```
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._io import atomic_write
from shortlist.text import CJK_SCRIPT_CHARS, split_sentences

__all__ = [
    "CALIBRATION_VERSION",
    "CJK_PRIOR_WEIGHT",
    "RELEVANCE_PRIOR",
    "RELEVANCE_RULE",
    "RELEVANCE_SIDES",
    "MIN_PROBES",
    "PRIOR_WEIGHT",
    "PROBES",
    "PROBE_DEPTH",
    "PROBE_POOL",
    "SEED",
    "Calibration",
    "Probe",
    "coverage",
    "dense_weight",
    "fit_relevance",
    "relevance_features",
    "relevance_prior",
    "make_probes",
    "script_of",
    "shrunk_weight",
    "unit_texts",
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
#: Chunks the probes are drawn from (at most), by :func:`probe_pool_ids`.
PROBE_POOL = 2000
SEED = 0
CALIBRATION_VERSION = 6
#: The probes' evidence (reciprocal ranks found, both sides) at which their weight and the prior count alike: a
#: soft switch, below it the prior stays, above it the probes decide (see :func:`shrunk_weight`).
EVIDENCE_SCALE = 10.0
#: Relevance model (per script): a logistic model of (1, cosine, log(1 + BM25), coverage) made of each side's
#: evidence, each centred where a hit is as likely right as not: the dense side's (10 per unit of cosine above
#: 0.45; none for CJK, which the dense side reads too little for its cosine to mean the same across queries) and
#: the keyword side's. The two are weighed as the fusion weighs the sides, ``2w`` and ``2(1 - w)`` for the dense
#: weight ``w`` of the query's script (see :func:`relevance_prior`). Set by reasoning about the features, never
#: fitted on evaluation labels; the probes fit the level (:func:`fit_relevance`).
RELEVANCE_SIDES: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "latin": ((-4.5, 10.0, 0.0, 0.0), (-1.5, 0.0, 0.5, 2.0)),
    "cjk": ((0.0, 0.0, 0.0, 0.0), (-8.0 / 3.0, 0.0, 2.0 / 3.0, 2.0)),
}
#: How the relevance coefficients were derived (saved with them): 1, a fixed direction per script; 2, the sides
#: weighed by the dense weight (:func:`relevance_prior`). A calibration saved under another rule keeps its weights
#: and uses the prior for relevance until it is next computed.
RELEVANCE_RULE = 2
#: Pseudo-observations the fitted intercept is shrunk toward the prior's with.
RELEVANCE_PRIOR_STRENGTH = 20.0
CALIBRATION_FILE = "calibration.json"

_CJK = re.compile(rf"[{CJK_SCRIPT_CHARS}]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def script_of(text: str) -> str:
    """``"cjk"`` if at least a third of the text's letters are CJK (Chinese, Japanese kana, Korean), else ``"latin"``.

    (Any non-CJK script counts as ``"latin"``: the bucket of the scripts the model's vocabulary reads in words.)
    """
    letters = len(_LETTER.findall(text))
    if letters == 0:
        return "latin"
    return "cjk" if len(_CJK.findall(text)) * 3 >= letters else "latin"


def dense_weight(mrr_dense: float, mrr_keyword: float, script: str = "latin") -> float:
    """The dense weight from the two sides' probe MRR: ``mrr_dense / (mrr_dense + mrr_keyword)``, rounded to 0.01.

    Each side is weighted in proportion to how well it found the probes' chunks on its own (a performance-weighted
    linear combination). When neither side found anything the prior of the script is used.
    """
    total = mrr_dense + mrr_keyword
    if total <= 0:
        return CJK_PRIOR_WEIGHT if script == "cjk" else PRIOR_WEIGHT
    return round(mrr_dense / total, 2)


def shrunk_weight(rr_dense: Sequence[float], rr_keyword: Sequence[float], prior: float) -> float:
    """The dense weight from the probes' reciprocal ranks, shrunk toward ``prior`` by how little they found.

    Each side's evidence is what it found (a probe found at rank 1 counts 1, at rank 10 a tenth, missed 0):
    ``d = sum(rr_dense)``, ``k = sum(rr_keyword)``. The probes say ``r = d / (d + k)``; the result is
    ``r + s * (prior - r)`` rounded to 0.01, with the shrinkage ``s = E**4 / (E**4 + (d + k)**4)`` and
    ``E`` = :data:`EVIDENCE_SCALE`: a soft switch at ``E`` found. So 57 probes that neither side finds (MRR 0.04
    and 0.08: 2.3 and 4.7 found, ``s`` = 0.81) keep the weight near the prior (0.79 for 0.9, where the ratio said
    0.33), while 100 probes that find 30 or more (SciFact: 37 and 28, ``s`` < 0.001) give the ratio itself.

    Args:
        rr_dense: Each probe's reciprocal rank (top 10, else 0) on the dense side.
        rr_keyword: The same on the keyword side.
        prior: The script's prior weight.
    """
    found_d, found_k = float(np.sum(rr_dense)), float(np.sum(rr_keyword))
    found = found_d + found_k
    if found <= 0:
        return round(prior, 2)
    ratio = found_d / found
    shrink = EVIDENCE_SCALE**4 / (EVIDENCE_SCALE**4 + found**4)
    return round(ratio + shrink * (prior - ratio), 2)


# ---------------------------------------------------------------------------------------------- relevance
_CJK_RUN = re.compile(rf"[{CJK_SCRIPT_CHARS}]+")
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)


def _units(text: str, *, cjk: bool = True, words: bool = True) -> set[str]:
    """What :func:`coverage` counts: CJK character bigrams (a lone character alone) and other words of 3+ letters."""
    units: set[str] = set()
    if cjk:
        for run in _CJK_RUN.findall(text):
            units.update(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    if words:
        units.update(w.lower() for w in _WORD.findall(_CJK_RUN.sub(" ", text)))
    return units


def unit_texts(query: str) -> tuple[str, str]:
    """The query's CJK runs and its other words, each joined: what is asked of the keyword index's vocabulary."""
    return " ".join(_CJK_RUN.findall(query)), " ".join(_WORD.findall(_CJK_RUN.sub(" ", query)))


def coverage(query: str, text: str, *, cjk: bool = True, words: bool = True) -> float:
    """The share of the query's units (CJK character bigrams, words) found in ``text``; 0 for a query without any.

    ``cjk=False`` / ``words=False`` leave that kind of unit out: the collection knows none of them (a Chinese
    question over English documents), so their absence from ``text`` says nothing.
    """
    wanted = _units(query, cjk=cjk, words=words)
    if not wanted:
        return 0.0
    return len(wanted & _units(text)) / len(wanted)


def relevance_prior(script: str, weight: float) -> tuple[float, ...]:
    """The relevance model's prior coefficients for ``script`` when the fusion gives the dense side ``weight``.

    ``2 * weight`` times the dense side's evidence plus ``2 * (1 - weight)`` times the keyword side's
    (:data:`RELEVANCE_SIDES`): a hit is judged by the evidence the collection trusts, in the proportion the fusion
    ranks it by. At ``weight`` 0.5 the sides count alike; at the Latin prior 0.9 the cosine leads
    (``(-8.4, 18, 0.1, 0.4)``); for CJK at its prior 0.25, ``(-4, 0, 1, 3)``.
    """
    dense, keyword = RELEVANCE_SIDES["cjk" if script == "cjk" else "latin"]
    w = min(max(float(weight), 0.0), 1.0)
    return tuple(round(2.0 * w * d + 2.0 * (1.0 - w) * k, 6) for d, k in zip(dense, keyword, strict=True))


#: The relevance model's prior coefficients with the two sides weighed alike (dense weight 0.5), per script.
RELEVANCE_PRIOR: Mapping[str, tuple[float, ...]] = {s: relevance_prior(s, 0.5) for s in RELEVANCE_SIDES}


def relevance_features(cosine: float, bm25: float, cover: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The relevance model's inputs: ``(1, cosine, log(1 + BM25), coverage)``."""
    return np.array([1.0, float(cosine), math.log1p(max(float(bm25), 0.0)), float(cover)], dtype=np.float64)


def _sigmoid(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
    return out


def fit_relevance(
    features: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    prior: Sequence[float],
    strength: float = RELEVANCE_PRIOR_STRENGTH,
) -> tuple[float, ...]:
    """The prior's model with its level fitted to ``labels`` (1: the right chunk) on ``features``.

    The prior fixes which evidence counts and how much (its direction and scale); the probes set where "as likely
    right as not" lies: the intercept of a logistic regression with the prior's evidence as offset, the two classes
    weighted equally (however many wrong chunks a probe brings), shrunk toward the prior's intercept by
    ``strength`` pseudo-observations. Solved by bisection (the score equation is monotone), so it always ends.
    Returns the four coefficients, like the prior.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    coef = np.asarray(prior, dtype=np.float64)
    n_pos, n_neg = float(y.sum()), float((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        return tuple(float(v) for v in prior)
    u = x[:, 1:] @ coef[1:]
    w = np.where(y > 0, 1.0, n_pos / n_neg)
    a0 = float(coef[0])

    def score(a: float) -> float:
        return float(np.sum(w * (_sigmoid(a + u) - y))) + 0.25 * strength * (a - a0)

    lo, hi = a0 - 50.0, a0 + 50.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if score(mid) > 0:
            hi = mid
        else:
            lo = mid
    return (round((lo + hi) / 2.0, 4), *(float(v) for v in coef[1:]))


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


def probe_pool_ids(ids: Sequence[str], size: int = PROBE_POOL, seed: int = SEED) -> list[str]:
    """The ids of up to ``size`` chunks drawn with a fixed seed: the chunks the probes are drawn from."""
    order = sorted(ids)
    rng = np.random.default_rng(seed)
    rng.shuffle(order)
    return order[:size]


# ---------------------------------------------------------------------------------------------- the value
@dataclass(frozen=True)
class Calibration:
    """Dense weights of a collection, by query script, and how they were found.

    Attributes:
        fingerprint: What the calibration was computed from (the keyword index's fingerprint).
        weights: Script (``"latin"``, ``"cjk"``) -> dense weight, for the scripts with enough probes.
        probes: Script -> probes used.
        mrr: Script -> ``{"dense": ..., "keyword": ..., "fused": ...}``: the probes' MRR@10 with dense only,
            keyword only and the chosen weight (and ``"ratio"``: the weight their MRR alone suggested).
        relevance: Script -> coefficients of the relevance model (see :meth:`relevance_for`), for the scripts
            with enough probes; the others use :func:`relevance_prior` at their weight.
        relevance_rule: :data:`RELEVANCE_RULE` the coefficients were derived under.
        seconds: Time taken.
        version: :data:`CALIBRATION_VERSION` of the procedure.
    """

    fingerprint: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)
    probes: Mapping[str, int] = field(default_factory=dict)
    mrr: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    version: int = CALIBRATION_VERSION
    relevance: Mapping[str, Sequence[float]] = field(default_factory=dict)
    relevance_rule: int = RELEVANCE_RULE

    def relevance_model(self, query: str) -> tuple[float, ...]:
        """The relevance model's coefficients for ``query``'s script (fitted, else the prior at its weight)."""
        script = script_of(query)
        if script in self.relevance:
            return tuple(float(v) for v in self.relevance[script])
        return relevance_prior(script, self.weight_for(query))

    def relevance_for(
        self, query: str, cosine: float, bm25: float, text: str, *, cjk: bool = True, words: bool = True
    ) -> float:
        """How likely a hit with this evidence is the right one, in [0, 1].

        A logistic model of its cosine, its BM25 score and :func:`coverage` of the query in its ``text``: the
        two sides' evidence weighed by the query's dense weight (:func:`relevance_prior`), its level fitted on
        this collection's probes (their right chunks against the best wrong ones) for the query's script.
        ``cjk``/``words``: whether the collection knows any of the query's units of that kind (see :func:`coverage`).
        """
        coef = np.asarray(self.relevance_model(query), dtype=np.float64)
        z = float(relevance_features(cosine, bm25, coverage(query, text, cjk=cjk, words=words)) @ coef)
        return round(float(_sigmoid(np.array([z]))[0]), 6)

    def weight_for(self, query: str) -> float:
        """The dense weight for ``query``: its script's calibrated weight, else the prior (see the module)."""
        script = script_of(query)
        if script in self.weights:
            return float(self.weights[script])
        return CJK_PRIOR_WEIGHT if script == "cjk" else PRIOR_WEIGHT

    def save(self, folder: str | Path) -> None:
        """Write ``calibration.json`` into ``folder`` (created if needed), atomically."""
        atomic_write(Path(folder) / CALIBRATION_FILE, json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, folder: str | Path) -> Calibration | None:
        """Read ``calibration.json`` from ``folder``; ``None`` if missing, unreadable or of another version."""
        try:
            raw = json.loads((Path(folder) / CALIBRATION_FILE).read_text(encoding="utf-8"))
            cal = cls(
                fingerprint=str(raw["fingerprint"]),
                weights={str(k): float(v) for k, v in raw["weights"].items()},
                probes={str(k): int(v) for k, v in raw["probes"].items()},
                mrr={str(k): {str(a): float(b) for a, b in v.items()} for k, v in raw["mrr"].items()},
                seconds=float(raw.get("seconds", 0.0)),
                version=int(raw["version"]),
                relevance=(
                    {str(k): tuple(float(x) for x in v) for k, v in raw.get("relevance", {}).items()}
                    if int(raw.get("relevance_rule", 1)) == RELEVANCE_RULE
                    else {}  # derived under another rule: the prior, at the weights, until the next calibration
                ),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.debug("No usable calibration in %s (%s)", folder, exc)
            return None
        return cal if cal.version == CALIBRATION_VERSION else None
