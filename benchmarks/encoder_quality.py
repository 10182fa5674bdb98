"""Retrieval quality of each encoder backend on SciFact: nDCG@10 and the shortlist's overlap with the torch backend.

    python benchmarks/encoder_quality.py                      # torch, onnx, onnx-int8 (~10 min on 2 cores, once)
    python benchmarks/encoder_quality.py --backends torch,onnx-int8 --k 50

The corpus (5,183 abstracts) is chunked as ``Prefilter.add_documents`` does (``split_text``, 128 tokens, overlap 16),
each backend embeds every chunk with ``Encoder.embed_documents`` (batch 32) and every test query with
``Encoder.embed_query``. Search is exact (NumPy ``V @ q``), so the figures compare the encoders and nothing else (no
HNSW approximation). A document ranks where its best chunk does. Printed per backend:

- nDCG@10, Recall@100 and MRR@10 against the SciFact qrels (300 test queries);
- shortlist recall vs torch: the share of torch's top-k chunks (k = 10 and ``--k``, 50 by default: the
  pre-filter's shortlist) that the backend's top-k also holds;
- the cosine of each chunk vector to torch's (min / mean).

Chunk vectors are cached in ``benchmarks/results/`` (keyed by backend and ONNX export version), so a second run
only searches.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from shortlist import Encoder
from shortlist.evaluate import load_beir, ndcg_at_k
from shortlist.onnx_export import EXPORT_VERSION
from shortlist.text import clean_text, split_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "beir_scifact"
RESULTS = REPO / "benchmarks" / "results"


def chunk_corpus(encoder: Encoder) -> tuple[list[str], list[str]]:
    data = load_beir(DATA)
    texts, owners = [], []
    for doc in data.documents():
        for piece in split_text(clean_text(doc["text"]), 128, 16, tokenizer=encoder.tokenizer):
            texts.append(piece)
            owners.append(doc["id"])
    return texts, owners


def vectors(backend: str, texts: list[str], questions: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
    # An ONNX backend's vectors depend on the exported graph too: a new export version is a new cache file.
    version = "" if backend == "torch" else f"-v{EXPORT_VERSION}"
    cache = RESULTS / f"scifact-chunks-{backend}{version}-{len(texts)}.npz"
    if cache.is_file():
        saved = np.load(cache)
        return saved["chunks"], saved["queries"], float(saved["seconds"])
    enc = Encoder(backend=backend, query_cache_size=0)
    enc.load()
    t = time.perf_counter()
    chunks = enc.embed_documents(texts)
    seconds = time.perf_counter() - t
    queries = np.stack([enc.embed_query(q) for q in questions])
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez(cache, chunks=chunks, queries=queries, seconds=seconds)
    return chunks, queries, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="torch,onnx,onnx-int8")
    ap.add_argument("--k", type=int, default=50, help="shortlist size (chunks) compared with torch's")
    args = ap.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "torch" not in backends:
        backends.insert(0, "torch")
    data = load_beir(DATA)
    qids = list(data.queries)
    questions = [data.queries[q] for q in qids]
    texts, owners = chunk_corpus(Encoder.shared(backend="onnx"))
    owner_arr = np.asarray(owners)
    print(f"SciFact: {len(data.corpus):,} documents -> {len(texts):,} chunks; {len(qids)} test queries", flush=True)
    results: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    for b in backends:
        results[b] = vectors(b, texts, questions)
        print(f"  {b}: embedded (corpus took {results[b][2]:.0f} s when first embedded)", flush=True)
    ref_chunks, ref_queries, _ = results["torch"]
    ref_top = np.argsort(-(ref_queries @ ref_chunks.T), axis=1)
    print()
    print(
        f"| backend | nDCG@10 | Δ vs torch | Recall@100 | MRR@10 | top-10 ∩ torch | top-{args.k} ∩ torch "
        "| chunk cosine to torch min / mean |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base_ndcg = None
    for b in backends:
        chunks, queries, _ = results[b]
        order = np.argsort(-(queries @ chunks.T), axis=1)
        ndcgs, r100, mrr10, o10, ok = [], [], [], [], []
        for i, qid in enumerate(qids):
            ranked = list(dict.fromkeys(owner_arr[order[i, :800]].tolist()))
            rel = data.qrels[qid]
            ndcgs.append(ndcg_at_k(ranked, rel, 10))
            r100.append(len(set(ranked[:100]) & set(rel)) / len(rel))
            first = next((j for j, d in enumerate(ranked[:10]) if d in rel), None)
            mrr10.append(0.0 if first is None else 1.0 / (first + 1))
            o10.append(len(set(order[i, :10].tolist()) & set(ref_top[i, :10].tolist())) / 10)
            ok.append(len(set(order[i, : args.k].tolist()) & set(ref_top[i, : args.k].tolist())) / args.k)
        ndcg = float(np.mean(ndcgs))
        base_ndcg = ndcg if base_ndcg is None else base_ndcg
        cos = np.sum(chunks * ref_chunks, axis=1)
        print(
            f"| {b} | {ndcg:.4f} | {ndcg - base_ndcg:+.4f} | {np.mean(r100):.4f} | {np.mean(mrr10):.4f} "
            f"| {np.mean(o10):.3f} | {np.mean(ok):.3f} | {cos.min():.4f} / {cos.mean():.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
