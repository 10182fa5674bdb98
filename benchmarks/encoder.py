"""Encoder speed, memory and fidelity: sentence-transformers, LangChain and each shortlist backend, in one process.

    python benchmarks/encoder.py                       # the whole table (~5 min on 2 cores)
    python benchmarks/encoder.py --rounds 5 --cold-runs 5
    python benchmarks/encoder.py --only st-torch,onnx-int8

Contestants, all on the same local weights (the packaged all-MiniLM-L6-v2), offline:

- ``st-torch``: ``SentenceTransformer(path).encode(..., normalize_embeddings=True)``: the reference (1.00x);
- ``lc-hf``: LangChain's ``HuggingFaceEmbeddings(model_name=path)`` (package langchain-huggingface);
- ``torch``, ``onnx``, ``onnx-int8``: ``shortlist.Encoder(backend=...)``.

Measured in this one process and interleaved (each round runs every contestant once, in turn), so a busy machine
slows them alike; the median round is reported, and every figure also as a ratio to st-torch:

- short text: sentences/s embedding the 300 SciFact test questions (batch 32);
- passages: passages/s embedding 64 SciFact abstracts of 150-254 word pieces (batch 32);
- query p50/p99: one ``embed_query`` (shortlist's query cache off) per question, contestants interleaved in blocks
  of ``--block`` questions (20), with an untimed ``--pause`` (0.1 s) before each block. After its last call,
  torch's OpenMP threads (and ONNX Runtime's pool, unless the session stops it as shortlist's sessions now do)
  keep spinning for up to ~20 ms, so on 2 cores a contestant that starts right after another is timed against
  the other's spinning threads: query by query, onnx-int8 went 2.3 -> 2.9 ms p50 and 8.7 ms p99, st-torch
  14 -> 22 ms; in blocks without the pause, the first ~10 queries of each onnx-int8 block after another
  (then spinning) ONNX session's block took 2.0-5.0 ms instead of 1.6-1.8 (p50 2.1 vs 1.7);
- fidelity: min / mean cosine of every vector above to st-torch's.

Cold start and memory are measured in fresh subprocesses (``--cold-runs`` each, interleaved): seconds from
launching the interpreter to the first query vector (imports, loading, one query), the peak RSS of a process
that then embeds the 64 passages (``VmHWM``), and "query p50 alone": the median of 100 questions asked in that
process, which holds this one contestant (no other library's thread pools or weights beside it).

The concurrency table: 8 threads asking the 300 questions through one shortlist encoder, with the query batcher
(``batch_queries=True``) and without; queries per second and the forward passes that ran.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from shortlist import Encoder  # noqa: E402
from shortlist.model import packaged_model_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "beir_scifact"
ALL = ("st-torch", "lc-hf", "torch", "onnx", "onnx-int8")

Embed = Callable[[list[str]], np.ndarray]
Query = Callable[[str], np.ndarray]


def load_texts(encoder: Encoder) -> tuple[list[str], list[str]]:
    with (DATA / "queries.jsonl").open(encoding="utf-8") as fh:
        questions = [json.loads(line)["text"] for line in fh]
    passages = []
    with (DATA / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            text = f"{doc['title']}. {doc['text']}".strip()
            if 150 <= encoder.count_tokens(text) <= 254:
                passages.append(text)
            if len(passages) == 64:
                break
    return questions, passages


def contestant(name: str, path: Path) -> tuple[Embed, Query]:
    if name == "st-torch":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(path), device="cpu", local_files_only=True)

        def st_docs(texts: list[str]) -> np.ndarray:
            return np.asarray(st.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False))

        def st_query(text: str) -> np.ndarray:
            return np.asarray(st.encode(text, normalize_embeddings=True, show_progress_bar=False))

        return st_docs, st_query
    if name == "lc-hf":
        from langchain_huggingface import HuggingFaceEmbeddings

        lc = HuggingFaceEmbeddings(
            model_name=str(path),
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
        )
        return (lambda texts: np.asarray(lc.embed_documents(texts), dtype=np.float32)), (
            lambda text: np.asarray(lc.embed_query(text), dtype=np.float32)
        )
    enc = Encoder(backend=name, query_cache_size=0).load()
    return (lambda texts: enc.embed_documents(texts, batch_size=32)), enc.embed_query


COLD = textwrap.dedent(
    """
    import os, sys, time, json
    name, path, passages_file, questions_file = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    os.environ["HF_HUB_OFFLINE"] = "1"
    if name == "st-torch":
        from sentence_transformers import SentenceTransformer
        m = SentenceTransformer(path, device="cpu", local_files_only=True)
        q = lambda t: m.encode(t, normalize_embeddings=True)
        d = lambda ts: m.encode(ts, batch_size=32, normalize_embeddings=True)
    elif name == "lc-hf":
        from langchain_huggingface import HuggingFaceEmbeddings
        m = HuggingFaceEmbeddings(model_name=path, model_kwargs={"device": "cpu", "local_files_only": True},
                                  encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
        q, d = m.embed_query, m.embed_documents
    else:
        from shortlist import Encoder
        m = Encoder(backend=name, query_cache_size=0)
        q, d = m.embed_query, m.embed_documents
    q("What is the first vector?")
    first = time.time()
    d(json.load(open(passages_file)))
    # VmHWM (peak RSS of this program since exec); ru_maxrss would carry the forking parent's peak over.
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
    # Query latency in a process that holds this contestant alone (no other library's threads or weights).
    took = []
    for text in json.load(open(questions_file)):
        t = time.perf_counter()
        q(text)
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    print(json.dumps({"first": first, "rss_mb": int(hwm.split()[1]) / 1024,
                      "torch": "torch" in sys.modules, "alone_p50": took[len(took) // 2]}))
    """
)


def cold_start(
    names: list[str], path: Path, passages: list[str], questions: list[str], runs: int
) -> dict[str, tuple[float, float, bool, float]]:
    pfile = REPO / "benchmarks" / "results" / "encoder-passages.json"
    pfile.parent.mkdir(parents=True, exist_ok=True)
    pfile.write_text(json.dumps(passages))
    qfile = pfile.with_name("encoder-questions.json")
    qfile.write_text(json.dumps(questions))
    times: dict[str, list[float]] = {n: [] for n in names}
    rss: dict[str, list[float]] = {n: [] for n in names}
    alone: dict[str, list[float]] = {n: [] for n in names}
    torch_loaded: dict[str, bool] = {}
    for _ in range(runs):
        for name in names:
            start = time.time()
            out = subprocess.run(
                [sys.executable, "-c", COLD, name, str(path), str(pfile), str(qfile)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"{name} cold start failed:\n{out.stderr[-2000:]}")
            data = json.loads(out.stdout.strip().splitlines()[-1])
            times[name].append(data["first"] - start)
            rss[name].append(data["rss_mb"])
            alone[name].append(data["alone_p50"])
            torch_loaded[name] = data["torch"]
    return {
        n: (statistics.median(times[n]), statistics.median(rss[n]), torch_loaded[n], statistics.median(alone[n]))
        for n in names
    }


def concurrency(questions: list[str], backends: list[str], threads: int) -> None:
    print(f"\nConcurrent queries: {threads} threads, {len(questions)} distinct questions, one shared encoder")
    print("| backend | batch_queries | queries/s | forward passes | ratio to unbatched |")
    print("|---|---|---:|---:|---:|")
    for backend in backends:
        rates = {}
        for batched in (False, True):
            enc = Encoder(backend=backend, query_cache_size=0, batch_queries=batched).load()
            enc.embed_query("warm up")
            best = 0.0
            for _ in range(2):
                t = time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(enc.embed_query, questions))
                best = max(best, len(questions) / (time.perf_counter() - t))
            rates[batched] = best
            stats = enc._query_batcher.stats() if enc._query_batcher is not None else None
            passes = f"{stats.batches} (mean batch {stats.mean_batch:.1f})" if stats else f"{2 * len(questions) + 1}"
            ratio = best / rates[False]
            print(f"| {backend} | {batched} | {best:.0f} | {passes} | {ratio:.2f}x |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(ALL), help="contestants, comma-separated (st-torch is always run)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--block", type=int, default=20, help="latency: questions per contestant per turn")
    ap.add_argument("--pause", type=float, default=0.1, help="latency: untimed seconds before each block (see above)")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--skip-concurrency", action="store_true")
    args = ap.parse_args()
    names = [n for n in ALL if n in args.only.split(",") or n == "st-torch"]
    path = packaged_model_path()
    from shortlist.onnx_export import export_onnx

    export_onnx(path)
    export_onnx(path, quantized=True)
    questions, passages = load_texts(Encoder.shared(backend="onnx"))
    tokens = [Encoder.shared(backend="onnx").count_tokens(p) for p in passages]
    print(
        f"Texts: {len(questions)} short questions (mean {np.mean([len(q.split()) for q in questions]):.0f} words), "
        f"{len(passages)} passages (mean {np.mean(tokens):.0f} word pieces); cores: {os.cpu_count()}",
        flush=True,
    )
    fns = {n: contestant(n, path) for n in names}
    for docs, query in fns.values():  # warm up
        docs(questions[:8])
        query("warm up")

    short_rate: dict[str, list[float]] = {n: [] for n in names}
    passage_rate: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for n in names:
            t = time.perf_counter()
            short = fns[n][0](questions)
            short_rate[n].append(len(questions) / (time.perf_counter() - t))
            t = time.perf_counter()
            long = fns[n][0](passages)
            passage_rate[n].append(len(passages) / (time.perf_counter() - t))
            vectors[n] = np.vstack([short, long])
    latency: dict[str, list[float]] = {n: [] for n in names}
    asked = questions[: args.latency_queries]
    for start in range(0, len(asked), args.block):
        for n in names:
            time.sleep(args.pause)  # let the previous contestant's threads stop spinning (not timed)
            for q in asked[start : start + args.block]:
                t = time.perf_counter()
                fns[n][1](q)
                latency[n].append((time.perf_counter() - t) * 1000)
    cold = {} if args.skip_cold else cold_start(names, path, passages, questions[:100], args.cold_runs)

    ref = vectors["st-torch"]
    s0, p0 = statistics.median(short_rate["st-torch"]), statistics.median(passage_rate["st-torch"])
    l50 = float(np.percentile(latency["st-torch"], 50))
    print(f"\nEncoder figures (median of {args.rounds} interleaved rounds; ratio to st-torch in brackets)")
    print(
        "| contestant | short text/s | passages/s | query p50 ms | query p99 ms | query p50 alone ms | cold start s "
        "| peak RSS MB | cosine to st-torch min / mean |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        s, p = statistics.median(short_rate[n]), statistics.median(passage_rate[n])
        p50, p99 = float(np.percentile(latency[n], 50)), float(np.percentile(latency[n], 99))
        cos = np.sum(vectors[n] * ref, axis=1)
        if cold:
            c, r, torch_loaded, a = cold[n]
            c0, r0, _, a0 = cold["st-torch"]
            cold_txt = f"{c:.2f} ({c0 / c:.1f}x)"
            rss_txt = f"{r:.0f} ({r / r0:.2f}x)" + ("" if torch_loaded else ", no torch")
            alone_txt = f"{a:.2f} ({a0 / a:.1f}x)"
        else:
            cold_txt = rss_txt = alone_txt = "-"
        print(
            f"| {n} | {s:.0f} ({s / s0:.2f}x) | {p:.1f} ({p / p0:.2f}x) | {p50:.2f} ({l50 / p50:.1f}x) | {p99:.2f} "
            f"| {alone_txt} | {cold_txt} | {rss_txt} | {cos.min():.4f} / {cos.mean():.4f} |",
            flush=True,
        )
    print("(query p50 and cold start: x = how many times faster than st-torch; peak RSS: share of st-torch's)")
    if not args.skip_concurrency:
        concurrency(questions, [n for n in names if n in ("torch", "onnx", "onnx-int8")], args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
