"""Hybrid search that never hurts: dense, BM25, fixed RRF and the adaptive fusion on five sets, in one run.

    python benchmarks/hybrid.py                          # all five sets, prints the table
    python benchmarks/hybrid.py --sets stackfaq,xquad-zh # some of them
    python benchmarks/hybrid.py --latency-queries 0      # skip the latency measurement

Sets (../shared/data, override with --data) and their metric:

    scifact   BEIR SciFact test (300 claims, 5,183 abstracts, chunks <= 128)  nDCG@10 of documents (a document
              ranks where its best chunk does; 40 chunks searched for 10 documents, as shortlist's eval does)
    squad2    SQuAD 2.0 dev half, answerable (2,910 questions, chunks <= 128)  gold recall@20 of chunks, and the
              share of corpus tokens those 20 chunks hold
    stackfaq  StackFAQ paraphrase -> canonical FAQ question (1,249 queries)     Top-1
    xquad-zh  XQuAD zh (1,190 questions, 240 passages, chunks <= 126)           gold recall@5 of chunks
    xquad-en  XQuAD en (the same, in English)                                   gold recall@5 of chunks
    clinc150  CLINC150 as an FAQ: the first five train utterances of each of the 150 intents (750 one-sentence
              entries, no probes); the 4,500 test utterances                    Top-1 intent
    clinc150-mixed  the failing shape of issue 16: the same FAQ where every seventh entry has a second sentence,
              another utterance of its intent or of its domain (107 two-sentence entries: few probes, which
              neither side finds well)                                          Top-1 intent
    stsb-zh-faq  a Chinese question-matching set from STS-B zh (train, pairs scored >= 4): the first sentences
              are the entries (with every seventh one given a second, unrelated sentence), the second
              sentences the queries                                             Top-1

Each set is ingested into an embedded Chroma folder under --db (default benchmarks/results/chroma-hybrid,
git-ignored: the vectors are computed once; a second run embeds only the queries, which are cached too). Retrieval
is exact: the dense list is the top of the query's cosine against every stored vector (numpy), the keyword list the
collection's own BM25 index (``Prefilter.keyword_index()``), and the hybrid lists are fused by the very objects
``Prefilter.search`` uses: ``pf.fusion`` (the adaptive default, with the collection's calibration from
``pf.calibration()``, which never reads the qrels) and ``shortlist.prefilter.rrf`` (k=60, equal weights). Each
side draws what ``Prefilter.search`` would draw: ``k`` for one side alone, ``max(4k, 20)`` per side in hybrid mode.

Latency: for --latency-queries questions per set (fixed seed), ``Prefilter.search`` (Chroma HNSW, the real path)
in dense and in hybrid mode, interleaved, with the query vectors already in the encoder's cache; the table gives
p50/p99 of each and of the per-query difference (what hybrid adds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shortlist import Encoder
from shortlist.evaluate import Dataset, index_dataset, load_beir, load_squad2, load_stackfaq
from shortlist.keywords.calibration import script_of
from shortlist.prefilter import Prefilter, rrf
from shortlist.search.fusion import convex

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_DB = REPO / "benchmarks" / "results" / "chroma-hybrid"
BARS = {"scifact": 0.72, "squad2": 0.98, "stackfaq": 0.94, "xquad-zh": 0.97, "xquad-en": 0.97}
#: Hybrid may fall this far below the better single side at most (issue 16).
SLACK = 0.005


@dataclass(frozen=True)
class SetSpec:
    name: str
    load: Callable[[Path], Dataset]
    chunk_tokens: int
    metric: str  # "ndcg10" | "recall" | "top1"
    k: int  # chunks searched


def _clinc_faq(data: Path, *, mixed: bool) -> Dataset:
    """CLINC150 as an FAQ of five entries per intent; ``mixed``: every seventh entry gets a second sentence."""
    raw = json.loads((data / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    entries: dict[str, list[str]] = {}
    spare: list[tuple[str, str]] = []
    for text, intent in raw["train"]:
        entries.setdefault(intent, [])
        if len(entries[intent]) < 5:
            entries[intent].append(text)
        elif len(entries[intent]) == 5 and not any(i == intent for _, i in spare[-1:]):
            spare.append((text, intent))
    domains = json.loads((data / "clinc150" / "domains.json").read_text(encoding="utf-8"))
    domain = {intent: name for name, intents in domains.items() for intent in intents}
    rng = np.random.default_rng(0)
    corpus: dict[str, dict[str, str]] = {}
    by_intent: dict[str, list[str]] = {}
    n = 0
    for intent, texts in entries.items():
        for j, text in enumerate(texts):
            doc_id = f"{intent}-{j}"
            if mixed and n % 7 == 3:  # a second sentence: another utterance of the intent, or of its domain
                pool = [t for t, i in spare if i == intent] if n % 2 else []
                pool = pool or [t for t, i in spare if i != intent and domain.get(i) == domain.get(intent)]
                text = f"{text.rstrip('?.!')}. {pool[int(rng.integers(len(pool)))].capitalize()}."
            corpus[doc_id] = {"title": "", "text": text}
            by_intent.setdefault(intent, []).append(doc_id)
            n += 1
    queries = {f"q{i}": t for i, (t, _) in enumerate(raw["test"])}
    qrels = {f"q{i}": dict.fromkeys(by_intent[it], 1) for i, (_, it) in enumerate(raw["test"])}
    return Dataset("clinc150-mixed" if mixed else "clinc150", corpus, queries, qrels)


def _stsb_zh_faq(data: Path) -> Dataset:
    """Chinese question matching from STS-B zh train: sentence 1 of the pairs is an entry, sentence 2 of the pairs
    scored >= 4 a query; every seventh entry gets a second, unrelated sentence."""  # noqa: D205
    with (data / "stsb_zh" / "stsb_zh_train.tsv").open(encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh][1:]
    rows = [r for r in rows if len(r) >= 3 and r[0].strip() and r[1].strip()]
    firsts = list(dict.fromkeys(r[0].strip() for r in rows))
    ids = {t: f"e{i}" for i, t in enumerate(firsts)}
    rng = np.random.default_rng(0)
    corpus = {}
    for i, text in enumerate(firsts):
        if i % 7 == 3:
            text = text.rstrip("。") + "。" + firsts[int(rng.integers(len(firsts)))]
        corpus[ids[firsts[i]]] = {"title": "", "text": text}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for j, r in enumerate(rows):
        if float(r[2]) >= 4 and r[1].strip() != r[0].strip():
            queries[f"q{j}"] = r[1].strip()
            qrels[f"q{j}"] = {ids[r[0].strip()]: 1}
    return Dataset("stsb-zh-faq", corpus, queries, qrels)


SETS = {
    "scifact": SetSpec("scifact", lambda d: load_beir(d / "beir_scifact", name="scifact"), 128, "ndcg10", 40),
    "squad2": SetSpec("squad2", lambda d: load_squad2(d / "squad2_dev_cs224n"), 128, "recall", 20),
    "stackfaq": SetSpec("stackfaq", lambda d: load_stackfaq(d / "stackfaq"), 128, "top1", 4),
    "xquad-zh": SetSpec("xquad-zh", lambda d: load_squad2(d / "xquad" / "zh"), 126, "recall", 5),
    "xquad-en": SetSpec("xquad-en", lambda d: load_squad2(d / "xquad" / "en"), 126, "recall", 5),
    "clinc150": SetSpec("clinc150", lambda d: _clinc_faq(d, mixed=False), 128, "top1", 4),
    "clinc150-mixed": SetSpec("clinc150-mixed", lambda d: _clinc_faq(d, mixed=True), 128, "top1", 4),
    "stsb-zh-faq": SetSpec("stsb-zh-faq", _stsb_zh_faq, 128, "top1", 4),
}
METRIC_NAMES = {"ndcg10": "nDCG@10", "recall": "gold R@{k}", "top1": "Top-1"}


def _ndcg10(docs: Sequence[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def _score(spec: SetSpec, order: Sequence[tuple[str, float]], source: dict[str, str], rel: dict[str, int]) -> float:
    srcs = [source[i] for i, _ in order[: spec.k]]
    if spec.metric == "ndcg10":
        return _ndcg10(list(dict.fromkeys(srcs))[:10], rel)
    if spec.metric == "top1":
        return 1.0 if srcs and srcs[0] in rel else 0.0
    return 1.0 if set(srcs) & set(rel) else 0.0


def _query_vectors(encoder: Encoder, texts: list[str], cache: Path, name: str) -> np.ndarray[Any, Any]:
    digest = hashlib.sha256(("\n".join(texts) + "\n" + encoder.model_name).encode()).hexdigest()[:16]
    path = cache / f"{name}-queries-{digest}.npy"
    if path.is_file():
        return np.load(path)
    vectors = np.asarray(encoder.embed_documents(texts), dtype=np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def run_set(spec: SetSpec, data: Path, db: Path, encoder: Encoder, latency_queries: int) -> dict[str, Any]:
    ds = spec.load(data)
    pf = Prefilter(f"{spec.name}-{spec.chunk_tokens}", path=db, encoder=encoder, chunk_tokens=spec.chunk_tokens)
    t = time.perf_counter()
    rep = index_dataset(pf, ds)
    ingest_s = time.perf_counter() - t
    t = time.perf_counter()
    index = pf.keyword_index()
    kw_s = time.perf_counter() - t
    t = time.perf_counter()
    cal = pf.calibration()
    cal_s = time.perf_counter() - t
    ids: list[str] = []
    source: dict[str, str] = {}
    tokens: dict[str, int] = {}
    vecs = []
    for batch in pf.store.iter_chunks(include_embeddings=True):
        for c in batch:
            ids.append(c.id)
            source[c.id] = c.source
            tokens[c.id] = c.tokens
            vecs.append(c.embedding)
    matrix = np.stack(vecs).astype(np.float32)
    corpus_tokens = sum(tokens.values())
    qids = list(ds.queries)
    qtexts = [ds.queries[q] for q in qids]
    qvecs = _query_vectors(encoder, qtexts, db.parent / "hybrid-queries", spec.name)
    one, pooled = spec.k, max(4 * spec.k, 20)
    sums = {"dense": 0.0, "keyword": 0.0, "rrf": 0.0, "adaptive": 0.0, "ratio": 0.0}
    ratio = {script: float(m.get("ratio", cal.weights.get(script, 0.0))) for script, m in cal.mrr.items()}
    sent = 0.0
    for qi, qid in enumerate(qids):
        text, rel = qtexts[qi], dict(ds.qrels[qid])
        sims = matrix @ qvecs[qi]
        top = np.argpartition(-sims, min(pooled, len(ids) - 1))[:pooled]
        top = top[np.argsort(-sims[top], kind="stable")]
        dense = [(ids[j], float(sims[j])) for j in top]
        keyword = index.search(text, pooled)
        lists = {
            "dense": dense[:one],
            "keyword": keyword[:one],
            "rrf": rrf(text, dense, keyword),
            "adaptive": pf.fusion(text, dense, keyword),
            # the weight the probes' MRR alone give (the calibration before issue 16 used it as is)
            "ratio": convex(text, dense, keyword, weight=ratio.get(script_of(text), cal.weight_for(text))),
        }
        for mode, order in lists.items():
            sums[mode] += _score(spec, order, source, rel)
        sent += sum(tokens[i] for i, _ in lists["adaptive"][: spec.k]) / corpus_tokens
    n = len(qids)
    row: dict[str, Any] = {mode: v / n for mode, v in sums.items()}
    row.update(
        name=spec.name,
        queries=n,
        chunks=len(ids),
        corpus_tokens=corpus_tokens,
        sent=sent / n,
        weights=dict(cal.weights),
        probe_mrr={k: dict(v) for k, v in cal.mrr.items()},
        calibration_s=cal_s,
        keyword_s=kw_s,
        ingest_s=ingest_s,
        embedded=rep.added,
    )
    if latency_queries > 0:
        row["latency"] = _latency(pf, qtexts, spec.k, latency_queries)
    print(
        f"[{spec.name}] {n} queries, {len(ids)} chunks; calibration {cal_s:.1f}s -> weights {row['weights']} "
        f"probe MRR {row['probe_mrr']}; dense {row['dense']:.3f} keyword {row['keyword']:.3f} "
        f"rrf {row['rrf']:.3f} adaptive {row['adaptive']:.3f} (MRR-ratio weight {row['ratio']:.3f})",
        flush=True,
    )
    return row


def _latency(pf: Prefilter, texts: list[str], k: int, n: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.permutation(len(texts))[:n]]
    for q in sample:  # warm: vectors in the encoder's cache, the collection and the keyword index loaded
        pf.search(q, k=k, mode="dense")
        pf.search(q, k=k, mode="hybrid")
    dense, hybrid = [], []
    for i, q in enumerate(sample):
        for mode in ("dense", "hybrid") if i % 2 == 0 else ("hybrid", "dense"):
            t = time.perf_counter()
            pf.search(q, k=k, mode=mode)
            (dense if mode == "dense" else hybrid).append((time.perf_counter() - t) * 1000.0)
    d, h = np.asarray(dense), np.asarray(hybrid)
    return {
        "dense_p50": float(np.percentile(d, 50)),
        "dense_p99": float(np.percentile(d, 99)),
        "hybrid_p50": float(np.percentile(h, 50)),
        "hybrid_p99": float(np.percentile(h, 99)),
        "added_p50": float(np.percentile(h - d, 50)),
        "added_p99": float(np.percentile(h - d, 99)),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| set | metric | dense | BM25 | RRF k=60 | adaptive | MRR-ratio weight | best single - 0.005 | bar "
        "| dense weight (by script) | ok |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        spec = SETS[r["name"]]
        metric = METRIC_NAMES[spec.metric].format(k=spec.k)
        floor = max(r["dense"], r["keyword"]) - SLACK
        bar = BARS.get(r["name"], 0.0)
        ok = r["adaptive"] >= floor - 1e-12 and r["adaptive"] >= bar - 1e-12
        weights = ", ".join(f"{s} {w:.2f}" for s, w in sorted(r["weights"].items())) or "none (prior)"
        lines.append(
            f"| {r['name']} | {metric} | {r['dense']:.3f} | {r['keyword']:.3f} | {r['rrf']:.3f} | "
            f"**{r['adaptive']:.3f}** | {r['ratio']:.3f} | {floor:.3f} | {bar:.2f} | {weights} | "
            f"{'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--latency-queries", type=int, default=100, help="questions per set timed (0: none)")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETS]
    if unknown:
        print(f"unknown sets {unknown}; choose from {list(SETS)}", file=sys.stderr)
        return 2
    encoder = Encoder.shared()
    encoder.load()
    rows = [run_set(SETS[name], args.data, args.db, encoder, args.latency_queries) for name in names]
    print("\n" + _table(rows))
    squad = next((r for r in rows if r["name"] == "squad2"), None)
    if squad is not None:
        print(f"\nsquad2: the adaptive top 20 hold {squad['sent']:.3%} of the corpus's tokens (bar: <= 1%)")
    timed = [r for r in rows if "latency" in r]
    if timed:
        print("\nPrefilter.search latency (ms; hybrid adds = per-query hybrid - dense)")
        print("| set | k | dense p50 | dense p99 | hybrid p50 | hybrid p99 | hybrid adds p50 | hybrid adds p99 |")
        print("|---|---|---|---|---|---|---|---|")
        for r in timed:
            lat = r["latency"]
            print(
                f"| {r['name']} | {SETS[r['name']].k} | {lat['dense_p50']:.1f} | {lat['dense_p99']:.1f} | "
                f"{lat['hybrid_p50']:.1f} | {lat['hybrid_p99']:.1f} | {lat['added_p50']:.1f} | "
                f"{lat['added_p99']:.1f} |"
            )
    print("\ncalibration (once per collection change, then reloaded from the Chroma folder):")
    for r in rows:
        print(
            f"  {r['name']}: {r['chunks']} chunks, probes' MRR@10 {r['probe_mrr'] or 'no probes (prior)'}, "
            f"{r['calibration_s']:.1f}s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
