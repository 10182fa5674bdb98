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

``--variants`` also prints the AUCs of the relevance designs compared for issue 16, recomputed from the same top-1
hits (a single script per case, so the intercept does not change an AUC and only each design's direction counts):

    rule1      the fixed direction per script (before): Latin (10, 0.5, 2), CJK (0, 1, 3)
    rule2      the chosen one (= relevance): the sides weighed by the collection's dense weight
    share      rule2 with log(1 + BM25) replaced by BM25 / the query's attainable BM25 (the IDF of its terms
               the collection holds: "the share of the query's keyword evidence matched")
    share+new  the same, the terms the collection never saw counted at the highest IDF
    support    rule2 with the cosine replaced by 0.02 * logsumexp(cosines of the k hits / 0.02) (a soft count
               of the hits as good as the first)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shortlist import Encoder
from shortlist.evaluate import Dataset, index_dataset, load_squad2
from shortlist.keywords.bm25 import tokenize
from shortlist.keywords.calibration import coverage, relevance_prior, unit_texts
from shortlist.prefilter import Prefilter
from shortlist.types import Hit

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


def evidence(pf: Prefilter, q: str, hits: Sequence[Hit]) -> list[float]:
    """The top-1 hit's evidence for ``--variants``: cosine, log(1 + BM25), coverage, the two BM25 shares, support."""
    if not hits:
        return [0.0] * 6
    index = pf._keywords.index()  # a benchmark may look inside: the live index's IDF of the query's terms
    terms = list(dict.fromkeys(tokenize(q)))
    idf = index._view.live_idf(terms)
    top_idf = math.log(1.0 + (len(index) + 0.5) / 0.5)  # a term no chunk holds
    known = [bool(t) and float(index.score_texts(t, [t])[0]) > 0 for t in unit_texts(q)]
    bm25 = float(index.score_texts(q, [hits[0].text])[0])
    attainable, attainable_new = sum(idf.values()), sum(idf.get(t, top_idf) for t in terms)
    cosines = np.asarray([float(h.score) for h in hits]) / 0.02
    return [
        float(hits[0].score),
        math.log1p(bm25),
        coverage(q, hits[0].text, cjk=known[0], words=known[1]),
        bm25 / attainable if attainable > 0 else 0.0,
        bm25 / attainable_new if attainable_new > 0 else 0.0,
        0.02 * float(cosines.max() + np.log(np.exp(cosines - cosines.max()).sum())),
    ]


def top1(
    pf: Prefilter, queries: Sequence[str], limit: int, variants: bool = False
) -> tuple[list[float], list[float], list[list[float]]]:
    """Each query's top-1 cosine and relevance (0 and 0 for an empty shortlist), and its evidence if asked."""
    rng = np.random.default_rng(0)
    picked = [queries[i] for i in sorted(rng.permutation(len(queries))[:limit])] if limit else list(queries)
    pf.encoder.embed_documents(picked)  # one batch, then cached
    cos, rel, ev = [], [], []
    for q in picked:
        hits = pf.search(q, k=5).hits
        cos.append(float(hits[0].score) if hits else 0.0)
        rel.append(float(hits[0].relevance or 0.0) if hits else 0.0)
        if variants:
            ev.append(evidence(pf, q, hits))
    return cos, rel, ev


def variant_aucs(
    ev_in: Sequence[Sequence[float]], ev_out: Sequence[Sequence[float]], script: str, weight: float
) -> dict[str, float]:
    """The ROC-AUC of each design of ``--variants`` (see the module), from the top-1 hits' evidence."""
    e_in, e_out = np.asarray(ev_in, dtype=np.float64), np.asarray(ev_out, dtype=np.float64)
    old = (0.0, 1.0, 3.0) if script == "cjk" else (10.0, 0.5, 2.0)
    new = relevance_prior(script, weight)[1:]
    designs = {  # (coefficients, columns of the evidence they apply to)
        "rule1": (old, (0, 1, 2)),
        "rule2": (new, (0, 1, 2)),
        "share": (new, (0, 3, 2)),
        "share+new": (new, (0, 4, 2)),
        "support": (new, (5, 1, 2)),
    }
    return {
        name: roc_auc(e_in[:, list(cols)] @ np.asarray(coef), e_out[:, list(cols)] @ np.asarray(coef))
        for name, (coef, cols) in designs.items()
    }


def case_groups(name: str, data: Path) -> tuple[Dataset | list[dict[str, str]], list[str], list[str], tuple[str, str]]:
    """A case's documents (a dataset to index, or CLINC150's FAQ entries), its in-scope and off-topic questions, and
    the names of the two groups."""  # noqa: D205
    if name.startswith("xquad"):
        lang = name.split("-")[1]
        ds = load_squad2(data / "xquad" / lang)
        return ds, list(ds.queries.values()), stsb_sentences(data, lang), ("questions", f"STS-B {lang}")
    if name == "clinc150":
        docs, inside, outside = clinc_faq(data)
        return docs, inside, outside, ("in-scope", "oos_test")
    ds = load_squad2(data / "squad2_dev_cs224n")
    return ds, list(ds.queries.values()), list(ds.unanswerable.values()), ("answerable", "unanswerable")


def run_case(name: str, data: Path, db: Path, encoder: Encoder, limit: int, variants: bool) -> dict[str, object]:
    source, inside, outside, labels = case_groups(name, data)
    if isinstance(source, list):
        pf = Prefilter(f"rel-{name}", path=db, encoder=encoder)
        pf.add_documents(source)
    else:
        pf = Prefilter(f"rel-{name}", path=db, encoder=encoder, chunk_tokens=126 if name.startswith("xquad") else 128)
        index_dataset(pf, source)
    cal = pf.calibration()
    cos_in, rel_in, ev_in = top1(pf, inside, limit, variants)
    cos_out, rel_out, ev_out = top1(pf, outside, limit, variants)
    pf.close()
    script = "cjk" if name == "xquad-zh" else "latin"
    row: dict[str, object] = {
        "name": name,
        "groups": f"{len(cos_in)} {labels[0]} / {len(cos_out)} {labels[1]}",
        "auc_cos": roc_auc(cos_in, cos_out),
        "auc_rel": roc_auc(rel_in, rel_out),
        "kept_in": float(np.mean(np.asarray(rel_in) >= THRESHOLD)),
        "kept_out": float(np.mean(np.asarray(rel_out) >= THRESHOLD)),
        "model": {k: list(v) for k, v in cal.relevance.items()} or "prior",
        "probes": dict(cal.probes),
        "weight": cal.weight_for("一个问题" if script == "cjk" else "a question"),
    }
    if variants:
        row["variants"] = variant_aucs(ev_in, ev_out, script, float(str(row["weight"])))
    print(
        f"[{name}] {row['groups']}: AUC top-1 cosine {row['auc_cos']:.3f}, top-1 relevance {row['auc_rel']:.3f}; "
        f"kept at min_relevance={THRESHOLD}: {row['kept_in']:.1%} / {row['kept_out']:.1%}; probes {row['probes']}, "
        f"relevance model {row['model']} (dense weight {row['weight']})",
        flush=True,
    )
    if variants:
        print(f"[{name}] variants: " + ", ".join(f"{k} {v:.4f}" for k, v in dict(row["variants"]).items()))  # type: ignore[call-overload]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--limit", type=int, default=0, help="queries per group at most (0: all)")
    parser.add_argument("--variants", action="store_true", help="also the AUCs of the designs compared (see above)")
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        print(f"unknown cases {unknown}; choose from {list(CASES)}", file=sys.stderr)
        return 2
    encoder = Encoder.shared()
    encoder.load()
    rows = [run_case(name, args.data, args.db, encoder, args.limit, args.variants) for name in names]
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
    if args.variants:
        names_v = list(dict(rows[0]["variants"]))  # type: ignore[call-overload]
        print("\n| case | cosine | " + " | ".join(names_v) + " |")
        print("|---|---|" + "---|" * len(names_v))
        for r in rows:
            v = dict(r["variants"])  # type: ignore[call-overload]
            print(f"| {r['name']} | {r['auc_cos']:.4f} | " + " | ".join(f"{v[n]:.4f}" for n in names_v) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
