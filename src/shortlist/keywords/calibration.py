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
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shortlist._io import atomic_write
from shortlist.text import CJK_SCRIPT_CHARS, split_sentences

__all__ = [
    "CALIBRATION_VERSION",
    "CJK_PRIOR_WEIGHT",
    "MIN_PROBES",
    "PRIOR_WEIGHT",
    "PROBES",
    "PROBE_DEPTH",
    "PROBE_POOL",
    "SEED",
    "Calibration",
    "Probe",
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
#: Chunks the probes are drawn from (at most), by :func:`probe_pool_ids`.
PROBE_POOL = 2000
SEED = 0
CALIBRATION_VERSION = 1
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
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.debug("No usable calibration in %s (%s)", folder, exc)
            return None
        return cal if cal.version == CALIBRATION_VERSION else None
