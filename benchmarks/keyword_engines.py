"""Keyword engines: today's bm25s ``KeywordIndex`` vs the live tantivy index (``LiveKeywordIndex``), same terms.

    python benchmarks/keyword_engines.py                       # agreement + 10k and 100k chunks
    python benchmarks/keyword_engines.py --sizes 1000000       # 1M, on a quiet machine
    python benchmarks/keyword_engines.py --skip-agreement --sizes 10000 --queries 100

Both engines index the very same terms (``shortlist.keywords.bm25.tokenize``, run once and timed on its own), so
the figures compare the engines, not tokenisers.

1. Agreement and quality on public sets (SciFact: 5,183 abstracts; XQuAD zh: 240 passages), cut into chunks as
   shortlist does (``split_text``, 128 tokens, 16 overlap), top-40 chunk lists as hybrid search draws them: per
   query, the share of today's top-10 (top-40) that the other engine also returns in its top-10 (top-40), and
   Spearman's rho of the two engines' scores over the union of both top-10s (a chunk missing from an engine's
   top-40 scores 0); keyword-only nDCG@10 (SciFact, BEIR qrels) and MRR@10 (XQuAD zh, one passage per question),
   at document level (a document ranks where its best chunk does). Engines: today's bm25s (k1 = 0.9, b = 0.4),
   bm25s with tantivy's k1 = 1.2 and b = 0.75 (the parameters' share of any difference), the tantivy index with
   its own BM25 (``rescore_depth=0``), rescoring tantivy's top ``max(100, 2.5 k)`` with bm25s's BM25 (the
   default) and rescoring only the top ``max(d, k)`` for each ``d`` of ``--depths``; the last column counts the
   queries whose top-40 lacks a chunk of today's top-40 that is not merely tied with the 40th score.
2. Speed and memory at each size of ``--sizes``: real English text, every chunk unique. Sentences of SciFact,
   SQuAD 2.0 and XQuAD en (../shared/data) are recombined, 3 to 5 distinct sentences per chunk, and a combination
   is used once (recombined sentences repeat across chunks, so a chunk made of one repeated sentence would be a
   duplicate; each combination here is drawn once). Build time (from the terms), query p50/p99 for top-40 with
   real SciFact and SQuAD questions (timed interleaved, per query, so a busy machine slows both alike), one added
   document until a reader finds it (tantivy: add + commit + a reader's reload + search; bm25s can only rebuild),
   and a fresh process's cold start (open the saved copy + first query) with its RSS delta after 50 queries.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import psutil
from scipy.stats import spearmanr

from shortlist.keywords.bm25 import BM25_B, BM25_K1, KeywordIndex, tokenize
from shortlist.keywords.segments import (
    DEFAULT_RESCORE_DEPTH,
    DEFAULT_RESCORE_FACTOR,
    LIVE_B,
    LIVE_K1,
    LiveKeywordIndex,
)
from shortlist.text import split_sentences, split_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")

Search = Callable[[str, int], list[tuple[str, float]]]


def jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bm25s_index(ids: list[str], terms: list[list[str]], k1: float = BM25_K1, b: float = BM25_B) -> KeywordIndex:
    """``KeywordIndex.build`` from terms already cut by ``tokenize`` (the same steps, without tokenising again)."""
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(terms, show_progress=False)
    return KeywordIndex(ids, retriever, "", sum(map(len, terms)) / max(len(terms), 1))


def tantivy_index(folder: Path, ids: list[str], terms: list[list[str]], batch: int = 5000) -> LiveKeywordIndex:
    index = LiveKeywordIndex.open(folder, writer=True)
    for start in range(0, len(ids), batch):
        index.add_terms(ids[start : start + batch], terms[start : start + batch])
    index.commit(position="build")
    return index


# -- 1. agreement and quality ----------------------------------------------------------------------------------------


def chunked(docs: list[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    owner: list[str] = []
    for doc_id, text in docs:
        for n, piece in enumerate(split_text(text, 128, 16)):
            ids.append(f"{doc_id}#{n}")
            texts.append(piece)
            owner.append(doc_id)
    return ids, texts, owner


def doc_ranking(hits: list[tuple[str, float]], k: int) -> list[str]:
    out: list[str] = []
    for chunk_id, _ in hits:
        doc = chunk_id.rsplit("#", 1)[0]
        if doc not in out:
            out.append(doc)
        if len(out) == k:
            break
    return out


def ndcg10(ranking: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:10]))
    return dcg / ideal if ideal else 0.0


def mrr10(ranking: list[str], relevant: dict[str, int]) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranking[:10]) if d in relevant), 0.0)


def load_set(name: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, dict[str, int]]]:
    if name == "scifact":
        root = DATA / "beir_scifact"
        docs = [(d["_id"], f"{d['title']}\n{d['text']}") for d in jsonl(root / "corpus.jsonl")]
        qrels_file = root / "qrels" / "test.tsv"
        qtext = {q["_id"]: q["text"] for q in jsonl(root / "queries.jsonl")}
    else:
        root = DATA / "xquad" / "zh"
        docs = [(d["_id"], d["text"]) for d in jsonl(root / "passages.jsonl")]
        qrels_file = root / "qrels" / "test.tsv"
        qtext = {q["_id"]: q["text"] for q in jsonl(root / "questions.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for line in qrels_file.read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = [(qid, qtext[qid]) for qid in qrels if qid in qtext]
    return docs, queries, qrels


def overlap(ref: list[tuple[str, float]], got: list[tuple[str, float]], k: int) -> float | None:
    top_ref = {i for i, _ in ref[:k]}
    return len(top_ref & {i for i, _ in got[:k]}) / len(top_ref) if top_ref else None


def beyond_ties(ref: list[tuple[str, float]], got: list[tuple[str, float]], k: int) -> bool:
    """Whether ``got``'s top-k lacks a chunk of ``ref``'s top-k that is not merely tied with ``got``'s k-th."""
    missing = {i for i, _ in ref[:k]} - {i for i, _ in got[:k]}
    if not missing:
        return False
    if len(got) < k:
        return True
    cut, scores = got[k - 1][1], dict(ref)
    return any(abs(scores[i] - cut) > 1e-5 * max(1.0, abs(cut)) for i in missing)


def agreement(depths: Sequence[int], depth: int = 40) -> None:
    lucene = f"bm25s k1={LIVE_K1} b={LIVE_B}"
    native = "tantivy, its own BM25 (rescore_depth=0)"
    print("\n1. Agreement with today's bm25s index (k1=0.9, b=0.4) and keyword-only quality, same terms, top-40 lists")
    print(
        "| set | chunks | queries | engine | compared with | top-10 overlap | top-40 overlap | "
        "Spearman (top-10 union) | top-40 differs beyond ties | quality |"
    )
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for name in ("scifact", "xquad-zh"):
        docs, queries, qrels = load_set(name)
        ids, texts, _ = chunked(docs)
        terms = [tokenize(t) for t in texts]
        with tempfile.TemporaryDirectory() as tmp:
            tantivy_index(Path(tmp), ids, terms).close()
            engines: dict[str, Search] = {
                "today": bm25s_index(ids, terms).search,
                lucene: bm25s_index(ids, terms, LIVE_K1, LIVE_B).search,
                native: LiveKeywordIndex.open(tmp, rescore_depth=0).search,
            }
            for d in depths:  # the depth alone: rescore_factor=0
                engines[f"tantivy rescored, {d} candidates"] = LiveKeywordIndex.open(
                    tmp, rescore_depth=d, rescore_factor=0
                ).search
            default = f"tantivy rescored (default: max({DEFAULT_RESCORE_DEPTH}, {DEFAULT_RESCORE_FACTOR} k) candidates)"
            engines[default] = LiveKeywordIndex.open(tmp).search
            pairs = [(label, "today") for label in engines] + [(native, lucene)]
            metric = ndcg10 if name == "scifact" else mrr10
            figures: dict[tuple[str, str], dict[str, list[float]]] = {
                pair: {"o10": [], "o40": [], "rho": [], "beyond": []} for pair in pairs
            }
            quality: dict[str, list[float]] = {label: [] for label in engines}
            for qid, text in queries:
                results = {label: search(text, depth) for label, search in engines.items()}
                for label, got in results.items():
                    quality[label].append(metric(doc_ranking(got, 10), qrels[qid]))
                for label, ref_label in pairs:
                    got, ref = results[label], results[ref_label]
                    fig = figures[label, ref_label]
                    fig["beyond"].append(float(beyond_ties(ref, got, 40)))
                    for key, k in (("o10", 10), ("o40", 40)):
                        value = overlap(ref, got, k)
                        if value is not None:
                            fig[key].append(value)
                    union = list(dict.fromkeys([i for i, _ in ref[:10]] + [i for i, _ in got[:10]]))
                    ref_s, got_s = dict(ref), dict(got)
                    x = [ref_s.get(i, 0.0) for i in union]
                    y = [got_s.get(i, 0.0) for i in union]
                    if len(set(x)) > 1 and len(set(y)) > 1:
                        fig["rho"].append(float(spearmanr(x, y).statistic))
            q_name = "nDCG@10" if name == "scifact" else "MRR@10"
            for label, ref_label in pairs:
                fig = figures[label, ref_label]
                shown = f"{q_name} {statistics.fmean(quality[label]):.4f}" if ref_label == "today" else ""
                print(
                    f"| {name} | {len(ids):,} | {len(queries):,} | {label} | {ref_label} | "
                    f"{statistics.fmean(fig['o10']):.3f} | {statistics.fmean(fig['o40']):.3f} | "
                    f"{statistics.fmean(fig['rho']):.3f} | {int(sum(fig['beyond']))} | {shown} |",
                    flush=True,
                )


# -- 2. speed and memory ---------------------------------------------------------------------------------------------


def sentence_pool() -> list[str]:
    texts = [f"{d['title']}. {d['text']}" for d in jsonl(DATA / "beir_scifact" / "corpus.jsonl")]
    texts += [d["text"] for d in jsonl(DATA / "squad2_dev_cs224n" / "passages.jsonl")]
    texts += [d["text"] for d in jsonl(DATA / "xquad" / "en" / "passages.jsonl")]
    pool = {s for t in texts for s in split_sentences(t) if len(s.split()) >= 5}
    return sorted(pool)


def unique_chunks(n: int, pool: list[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    seen: set[tuple[int, ...]] = set()
    out: list[str] = []
    while len(out) < n:
        combo = tuple(rng.sample(range(len(pool)), rng.randint(3, 5)))
        if combo in seen:
            continue
        seen.add(combo)
        out.append(" ".join(pool[i] for i in combo))
    return out


def real_questions(n: int) -> list[str]:
    qs = [q["text"] for q in jsonl(DATA / "beir_scifact" / "queries.jsonl")]
    qs += [q["text"] for q in jsonl(DATA / "squad2_dev_cs224n" / "questions.jsonl") if q.get("answerable")]
    random.Random(1).shuffle(qs)
    return qs[:n]


_COLD = """
import json, sys, time, psutil
from shortlist.keywords.bm25 import tokenize
tokenize("warm up the stemmer and stop words")
from shortlist.keywords.bm25 import KeywordIndex
from shortlist.keywords.segments import LiveKeywordIndex
engine, folder, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
proc = psutil.Process()
before = proc.memory_info().rss
t = time.perf_counter()
index = KeywordIndex.load(folder) if engine == "bm25s" else LiveKeywordIndex.open(folder)
index.search(queries[0], 40)
first = time.perf_counter() - t
for q in queries:
    index.search(q, 40)
print(json.dumps({"first_s": first, "rss": proc.memory_info().rss - before}))
"""


def cold_start(engine: str, folder: Path, queries: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _COLD, engine, str(folder), json.dumps(queries[:50])],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def speed(size: int, pool: list[str], questions: list[str], adds: int) -> list[str]:
    chunks = unique_chunks(size + adds, pool, seed=size)
    extra, chunks = chunks[size:], chunks[:size]
    ids = [f"c{i}" for i in range(size)]
    t = time.perf_counter()
    terms = [tokenize(c) for c in chunks]
    tok_s = time.perf_counter() - t
    rows: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="kw-engines-"))
    try:
        base = rss()
        t = time.perf_counter()
        today = bm25s_index(ids, terms)
        bm_build = time.perf_counter() - t
        bm_rss = rss() - base
        today.save(work / "bm25s")

        base = rss()
        t = time.perf_counter()
        live = tantivy_index(work / "tantivy", ids, terms)
        tv_build = time.perf_counter() - t
        tv_rss = rss() - base
        reader = LiveKeywordIndex.open(work / "tantivy")
        native = LiveKeywordIndex.open(work / "tantivy", rescore_depth=0)

        bm_ms: list[float] = []
        tv_ms: list[float] = []
        nat_ms: list[float] = []
        for q in questions:
            for search, times in ((today.search, bm_ms), (reader.search, tv_ms), (native.search, nat_ms)):
                t = time.perf_counter()
                search(q, 40)
                times.append((time.perf_counter() - t) * 1e3)

        add_ms: list[float] = []
        for n, text in enumerate(extra):
            new_id = f"new{n}"
            probe = " ".join(tokenize(text)[:6])
            t = time.perf_counter()
            live.add([new_id], [text])
            live.commit(position=f"add-{n}")
            reader.reload()
            found = new_id in [i for i, _ in reader.search(probe, 40)]
            add_ms.append((time.perf_counter() - t) * 1e3)
            if not found:
                print(f"  (the added chunk {new_id} was not in the top-40 of its own words)", flush=True)
        t = time.perf_counter()
        rebuilt = bm25s_index([*ids, "new"], [*terms, tokenize(extra[0])])
        rebuilt.search(" ".join(tokenize(extra[0])[:6]), 40)
        bm_add = (time.perf_counter() - t) * 1e3
        del rebuilt
        live.close()

        cold_bm = cold_start("bm25s", work / "bm25s", questions)
        cold_tv = cold_start("tantivy", work / "tantivy", questions)
        rows.append(
            f"| {size:,} | bm25s (today) | {bm_build:.1f} | {pct(bm_ms, 50):.1f} / {pct(bm_ms, 99):.1f} | "
            f"{bm_add:,.0f} (rebuild) | {cold_bm['first_s']:.2f} | {mb(bm_rss)} | {mb(cold_bm['rss'])} | "
            f"{mb(folder_bytes(work / 'bm25s'))} |"
        )
        rows.append(
            f"| {size:,} | tantivy, rescored (default) | {tv_build:.1f} | {pct(tv_ms, 50):.1f} / {pct(tv_ms, 99):.1f} "
            f"| {statistics.median(add_ms):,.0f} (commit+reload) | {cold_tv['first_s']:.2f} | {mb(tv_rss)} | "
            f"{mb(cold_tv['rss'])} | {mb(folder_bytes(work / 'tantivy'))} |"
        )
        rows.append(
            f"| {size:,} | tantivy, own BM25 (rescore_depth=0) | (same) | "
            f"{pct(nat_ms, 50):.1f} / {pct(nat_ms, 99):.1f} | (same) | | | | |"
        )
        print(f"  {size:,} chunks: tokenise {tok_s:.1f} s (shared by both, not in the build column)", flush=True)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts (1000000 for 1M)")
    ap.add_argument("--queries", type=int, default=200, help="real questions timed per size")
    ap.add_argument("--adds", type=int, default=5, help="single-document adds timed per size")
    ap.add_argument("--skip-agreement", action="store_true")
    ap.add_argument("--depths", default="60,80", help="candidate counts compared with the default rescoring")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    if not args.skip_agreement:
        agreement([int(d) for d in args.depths.split(",")])
    if not args.skip_speed:
        pool = sentence_pool()
        questions = real_questions(args.queries)
        print(f"\n2. Speed and memory: {len(pool):,} distinct sentences, 3-5 per chunk, every chunk unique;")
        print(f"   {len(questions)} real questions, top-40; times interleaved; {psutil.cpu_count()} cores")
        rows: list[str] = []
        for size in (int(s) for s in args.sizes.split(",")):
            rows.extend(speed(size, pool, questions, args.adds))
        print(
            "\n| chunks | engine | build s | query ms p50 / p99 | add 1 doc -> found, ms | cold start s | "
            "RSS delta (build) | RSS delta (fresh reader, 50 q) | on disk |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
