"""Does ``Hit.relevance`` tell "nothing relevant" apart? Off-topic and unanswerable detection, ROC-AUC, in one run.

    python benchmarks/relevance.py                      # all four cases
    python benchmarks/relevance.py --cases xquad-zh     # some of them

Cases (../shared/data, override with --data); each scores a query by its top-1 hit of ``Prefilter.search``
(hybrid, k=5), and the ROC-AUC says how well that score ranks in-scope queries above the others:

    xquad-zh   240 XQuAD zh passages indexed; in-scope: their 1,190 questions; off-topic: STS-B zh test sentences
    xquad-en   the same in English (STS-B en test sentences)
    clinc150   an FAQ of the first five train utterances of each of the 150 intents; in-scope: the 4,500 test
               utterances; off-topic: the 1,000 oos_test ones
    squad2     SQuAD 2.0 dev half (1,216 passages); answerable vs unanswerable questions

For each: the AUC of the top-1 hit's cosine (``score``, what ``min_score`` thresholds) and of its ``relevance``
(what ``min_relevance`` thresholds), and the share of each group kept at ``min_relevance`` = 0.5. No label is
used to fit anything: the relevance model comes from the collection's own calibration probes.
Collections are kept under --db (default benchmarks/results/chroma-relevance, git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shortlist import Encoder
from shortlist.evaluate import index_dataset, load_squad2
from shortlist.prefilter import Prefilter

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_DB = REPO / "benchmarks" / "results" / "chroma-relevance"
CASES = ("xquad-zh", "xquad-en", "clinc150", "squad2")
TARGETS = {"xquad-zh": 0.95, "xquad-en": 0.99, "clinc150": 0.93, "squad2": 0.63}
THRESHOLD = 0.5


def roc_auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """The probability that a random positive scores above a random negative (ties count half)."""
    p, n = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    values = np.concatenate([p, n])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[: len(p)].sum() - len(p) * (len(p) + 1) / 2.0) / (len(p) * len(n)))


def stsb_sentences(data: Path, lang: str) -> list[str]:
    """The distinct first sentences of the STS-B test pairs of one language."""
    if lang == "zh":
        with (data / "stsb_zh" / "stsb_zh_test.tsv").open(encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        return list(dict.fromkeys(r[0] for r in rows if r and r[0].strip()))
    with (data / "stsb_en" / "sts-test.clean.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return list(dict.fromkeys(r[5] for r in rows if len(r) > 5 and r[5].strip()))


def clinc_faq(data: Path, per_intent: int = 5) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """CLINC150 as an FAQ: documents (first ``per_intent`` train utterances per intent), in-scope and oos queries."""
    raw = json.loads((data / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    entries: dict[str, list[str]] = {}
    for text, intent in raw["train"]:
        entries.setdefault(intent, [])
        if len(entries[intent]) < per_intent:
            entries[intent].append(text)
    docs = [{"id": f"{intent}-{i}", "text": t} for intent, ts in entries.items() for i, t in enumerate(ts)]
    return docs, [t for t, _ in raw["test"]], [t for t, _ in raw["oos_test"]]


def top1(pf: Prefilter, queries: Sequence[str], limit: int) -> tuple[list[float], list[float]]:
    """Each query's top-1 cosine and relevance (0 and 0 for an empty shortlist)."""
    rng = np.random.default_rng(0)
    picked = [queries[i] for i in sorted(rng.permutation(len(queries))[:limit])] if limit else list(queries)
    pf.encoder.embed_documents(picked)  # one batch, then cached
    cos, rel = [], []
    for q in picked:
        hits = pf.search(q, k=5).hits
        cos.append(float(hits[0].score) if hits else 0.0)
        rel.append(float(hits[0].relevance or 0.0) if hits else 0.0)
    return cos, rel


def run_case(name: str, data: Path, db: Path, encoder: Encoder, limit: int) -> dict[str, object]:
    if name.startswith("xquad"):
        lang = name.split("-")[1]
        ds = load_squad2(data / "xquad" / lang)
        pf = Prefilter(f"rel-{name}", path=db, encoder=encoder, chunk_tokens=126)
        index_dataset(pf, ds)
        inside, outside = list(ds.queries.values()), stsb_sentences(data, lang)
        labels = ("questions", f"STS-B {lang}")
    elif name == "clinc150":
        docs, inside, outside = clinc_faq(data)
        pf = Prefilter("rel-clinc150", path=db, encoder=encoder)
        pf.add_documents(docs)
        labels = ("in-scope", "oos_test")
    else:
        ds = load_squad2(data / "squad2_dev_cs224n")
        pf = Prefilter("rel-squad2", path=db, encoder=encoder, chunk_tokens=128)
        index_dataset(pf, ds)
        inside, outside = list(ds.queries.values()), list(ds.unanswerable.values())
        labels = ("answerable", "unanswerable")
    cal = pf.calibration()
    cos_in, rel_in = top1(pf, inside, limit)
    cos_out, rel_out = top1(pf, outside, limit)
    pf.close()
    row: dict[str, object] = {
        "name": name,
        "groups": f"{len(cos_in)} {labels[0]} / {len(cos_out)} {labels[1]}",
        "auc_cos": roc_auc(cos_in, cos_out),
        "auc_rel": roc_auc(rel_in, rel_out),
        "kept_in": float(np.mean(np.asarray(rel_in) >= THRESHOLD)),
        "kept_out": float(np.mean(np.asarray(rel_out) >= THRESHOLD)),
        "model": {k: list(v) for k, v in cal.relevance.items()} or "prior",
        "probes": dict(cal.probes),
    }
    print(
        f"[{name}] {row['groups']}: AUC top-1 cosine {row['auc_cos']:.3f}, top-1 relevance {row['auc_rel']:.3f}; "
        f"kept at min_relevance={THRESHOLD}: {row['kept_in']:.1%} / {row['kept_out']:.1%}; probes {row['probes']}, "
        f"relevance model {row['model']}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--limit", type=int, default=0, help="queries per group at most (0: all)")
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        print(f"unknown cases {unknown}; choose from {list(CASES)}", file=sys.stderr)
        return 2
    encoder = Encoder.shared()
    encoder.load()
    rows = [run_case(name, args.data, args.db, encoder, args.limit) for name in names]
    print(
        "\n| case | groups | ROC-AUC top-1 cosine | ROC-AUC top-1 relevance | target "
        f"| kept at {THRESHOLD} (in / out) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['groups']} | {r['auc_cos']:.3f} | **{r['auc_rel']:.3f}** | "
            f"{TARGETS[str(r['name'])]:.2f} | {r['kept_in']:.1%} / {r['kept_out']:.1%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
