"""Pre-filter speed: search latency at 10k and 100k chunks vs exact NumPy search, HNSW recall, ingest rate.

    python benchmarks/prefilter.py                          # 10k and 100k chunks, ingest on 1,000 chunks
    python benchmarks/prefilter.py --sizes 10000 --queries 200
    python benchmarks/prefilter.py --skip-latency           # only the ingest rate

Vectors: real MiniLM embeddings of SciFact abstract chunks (``--base`` of them, from ../shared/data) and, to reach
100k without hours of embedding on a laptop CPU, synthetic neighbours of them: each is a random mix of two real
chunk vectors plus a little noise, re-normalised (so the collection has the clustered shape of real text, not
the uniform sphere of random vectors). Queries are real SciFact questions, embedded once.

Timings are interleaved per query (Prefilter.search with the query vector, Chroma's raw query, NumPy exact
``V @ q`` + argpartition), so a busy machine slows all of them alike; the ratios are the figures to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from shortlist import Encoder
from shortlist.prefilter import Prefilter
from shortlist.store import ChunkRecord
from shortlist.text import split_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "beir_scifact"


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def real_chunks(limit: int, encoder: Encoder) -> list[str]:
    out: list[str] = []
    with (DATA / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            out.extend(split_text(f"{doc['title']}\n{doc['text']}", 128, 16, tokenizer=encoder.tokenizer))
            if len(out) >= limit:
                break
    return out[:limit]


def queries(n: int) -> list[str]:
    with (DATA / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh][:n]


def synthetic(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(base), n)
    j = rng.integers(0, len(base), n)
    w = rng.uniform(0.55, 1.0, (n, 1)).astype(np.float32)
    v = w * base[i] + (1 - w) * base[j] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
    v[: len(base)] = base[: min(n, len(base))]
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def latency(
    size: int, base_vecs: np.ndarray, base_texts: list[str], qvecs: np.ndarray, encoder: Encoder, k: int
) -> None:
    vecs = synthetic(base_vecs, size)
    pf = Prefilter.in_memory(f"bench-{size}", encoder=encoder)
    t = time.perf_counter()
    step = pf.store.max_batch_size
    for start in range(0, size, step):
        end = min(start + step, size)
        recs = [
            ChunkRecord(source=f"s{i // 3}", chunk=i % 3, text=base_texts[i % len(base_texts)], tokens=100)
            for i in range(start, end)
        ]
        pf.store.upsert(recs, vecs[start:end])
    load_s = time.perf_counter() - t
    ids = [c.id for batch in pf.store.iter_chunks(include_text=False) for c in batch]
    id_to_row = {f"s{i // 3}|{i % 3}": i for i in range(size)}
    row_of = {}
    for batch in pf.store.iter_chunks(include_text=False):
        for c in batch:
            row_of[c.id] = id_to_row[f"{c.metadata['source']}|{c.metadata['chunk']}"]
    assert len(ids) == size

    t_search, t_raw, t_np, recalls = [], [], [], []
    col = pf.store.collection
    for q in qvecs:
        t0 = time.perf_counter()
        hits = pf.search(q, k=k)
        t1 = time.perf_counter()
        col.query(query_embeddings=q[None, :], n_results=k, include=["distances"])
        t2 = time.perf_counter()
        scores = vecs @ q
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top])]
        t3 = time.perf_counter()
        t_search.append((t1 - t0) * 1000)
        t_raw.append((t2 - t1) * 1000)
        t_np.append((t3 - t2) * 1000)
        got = {row_of[h.id] for h in hits}
        recalls.append(len(got & set(top.tolist())) / k)
    print(
        f"| {size:>7,} | {pct(t_search, 50):6.2f} / {pct(t_search, 99):6.2f} | {pct(t_raw, 50):6.2f} / "
        f"{pct(t_raw, 99):6.2f} | {pct(t_np, 50):6.2f} / {pct(t_np, 99):6.2f} | {statistics.mean(recalls):.4f} "
        f"| {load_s:7.1f} |",
        flush=True,
    )


def ingest_rate(encoder: Encoder, texts: list[str], rounds: int) -> None:
    docs = [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]
    enc_rates, ing_rates = [], []
    for r in range(rounds):
        t = time.perf_counter()
        encoder.embed_documents(texts)
        enc_rates.append(len(texts) / (time.perf_counter() - t))
        pf = Prefilter.in_memory(f"ingest-{r}", encoder=encoder)
        t = time.perf_counter()
        rep = pf.add_documents(docs)
        ing_rates.append(rep.chunks / (time.perf_counter() - t))
        t = time.perf_counter()
        again = pf.add_documents(docs)
        re_s = time.perf_counter() - t
        print(
            f"  round {r + 1}: encoder {enc_rates[-1]:7.1f} chunks/s | add_documents {ing_rates[-1]:7.1f} chunks/s "
            f"({rep.chunks} chunks) | re-ingest (nothing to embed) {again.chunks / re_s:8.0f} chunks/s",
            flush=True,
        )
    e, i = statistics.median(enc_rates), statistics.median(ing_rates)
    print(f"\nIngest median: {i:.1f} chunks/s vs bare encoder {e:.1f} chunks/s -> {i / e:.2f}x of the encoder rate")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--base", type=int, default=3000, help="real chunks embedded as the base of the vectors")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ingest-chunks", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--torch-threads", type=int, default=None)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    args = ap.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    encoder = Encoder.shared().load()
    texts = real_chunks(max(args.base, args.ingest_chunks), encoder)
    if not args.skip_latency:
        cache = REPO / "benchmarks" / "results" / f"scifact-base-{args.base}-q{args.queries}.npz"
        if cache.is_file():
            saved = np.load(cache)
            base_vecs, qvecs = saved["base"], saved["queries"]
            print(f"Loaded {len(base_vecs)} real SciFact chunk vectors from {cache}", flush=True)
        else:
            t = time.perf_counter()
            base_vecs = encoder.embed_documents(texts[: args.base])
            print(f"Embedded {args.base} real SciFact chunks in {time.perf_counter() - t:.1f}s", flush=True)
            qvecs = np.stack([encoder.embed_query(q) for q in queries(args.queries)])
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, base=base_vecs, queries=qvecs)
        print(f"\nSearch latency over {len(qvecs)} queries, top-{args.k}, p50 / p99 in ms (Chroma HNSW M=16, ef=100)")
        print("|  chunks | Prefilter.search | Chroma query    | NumPy exact     | HNSW recall@k | load s |")
        print("|--------:|-----------------:|----------------:|----------------:|--------------:|-------:|")
        for size in (int(s) for s in args.sizes.split(",")):
            latency(size, base_vecs, texts[: args.base], qvecs, encoder, args.k)
    if not args.skip_ingest:
        print(f"\nIngest rate on {args.ingest_chunks} SciFact chunks of <= 128 tokens (in-memory Chroma)")
        ingest_rate(encoder, texts[: args.ingest_chunks], args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
