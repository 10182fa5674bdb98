"""Distributed ingest on Ray: chunks/s with 1 and 2 actors, where the time goes, and what the Chroma server can take.

    python benchmarks/distributed.py                  # 120 SciFact documents, actors 1 and 2, the write sweep
    python benchmarks/distributed.py --docs 400 --actors 1,2 --backend onnx-int8
    python benchmarks/distributed.py --quick          # 40 documents, a smaller write sweep
    python benchmarks/distributed.py --skip-ingest    # only the server's write rate

Everything runs here, on 127.0.0.1: one `chroma run` (its own folder and port, or ``--chroma-url``), one local Ray
instance (``--cpus``, default 2, no dashboard), the first ``--docs`` documents of ../shared/data/beir_scifact as a
BEIR folder.

1. **Ingest**: :func:`shortlist.distributed.index` into a fresh collection per actor count: wall time, chunks/s,
   each actor's rate (chunks per busy second, and chunks per second of embedding) and the time split: read (the
   driver reads and checks the files), chunk, diff (which chunks the server holds), embed, write (summed over the
   actors). The same corpus through single-process ingest (``Prefilter.add_documents`` on the same server) is the
   reference.
2. **Server write rate**: precomputed vectors written through ``ChunkStore.upsert`` (the change journal included, as
   the actors write) by 1, 2, 4 client processes at once, in batches of 64, 256 and 1024 chunks: chunks/s the
   server accepts. Each cell writes to its own fresh collection.
3. **Where the bottleneck moves**: the encoder's rate per actor against the server's best write rate gives how
   many actors one server keeps fed.

On a shared 2-core machine the Chroma server, the Ray actors and the driver compete for the same cores (and other
programs' load shows up in every figure): read the ratios, and run it on a quiet machine for absolute rates.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared" / "data" / "beir_scifact"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_chroma(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    log = (folder / "chroma.log").open("ab")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    command = [str(chroma), "run", "--path", str(folder / "db"), "--host", HOST, "--port", str(port)]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/heartbeat", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("chroma run did not answer within 90 s")


def beir_slice(folder: Path, docs: int) -> Path:
    """The first ``docs`` SciFact documents as a BEIR folder (corpus.jsonl + queries.jsonl)."""
    if not (SCIFACT / "corpus.jsonl").is_file():
        raise SystemExit(f"{SCIFACT} is missing (../shared/data beside the checkout)")
    out = folder / "scifact-slice"
    out.mkdir(parents=True, exist_ok=True)
    with (SCIFACT / "corpus.jsonl").open() as src, (out / "corpus.jsonl").open("w") as dst:
        for i, line in enumerate(src):
            if i >= docs:
                break
            dst.write(line)
    (out / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "unused"}) + "\n")
    return out


# ---------------------------------------------------------------------------------------------------- ingest
def ingest(args: argparse.Namespace, corpus: Path, port: int) -> list[dict[str, Any]]:
    from shortlist import Encoder
    from shortlist.distributed import import_ray, index
    from shortlist.loaders import load_files
    from shortlist.prefilter import Prefilter

    rows: list[dict[str, Any]] = []
    if not args.skip_single:
        encoder = Encoder(backend=args.backend).load()
        docs = [d.as_dict() for d in load_files([corpus]).documents]
        pre = Prefilter("bench-single", host=HOST, port=port, encoder=encoder)
        t = time.perf_counter()
        rep = pre.add_documents(docs, batch_size=64)
        wall = time.perf_counter() - t
        rows.append({"setup": "single process", "chunks": rep.chunks, "wall": wall, "rate": rep.chunks / wall})
        print(f"single process: {rep.chunks} chunks in {wall:.1f} s = {rep.chunks / wall:.1f} chunks/s", flush=True)

    ray = import_ray()
    t = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    print(f"Ray local instance ({args.cpus} CPUs) started in {time.perf_counter() - t:.1f} s", flush=True)
    try:
        for n in (int(a) for a in args.actors.split(",")):
            rep = index(
                [corpus],
                collection=f"bench-ray-{n}",
                host=HOST,
                port=port,
                actors=n,
                batch_size=args.batch_size,
                backend=args.backend,
            )
            busy = sum(w.busy_s for w in rep.workers)
            rows.append(
                {
                    "setup": f"ray, {n} actor{'s' if n > 1 else ''}",
                    "chunks": rep.chunks,
                    "wall": rep.seconds,
                    "rate": rep.chunks_per_second,
                    "busy_rate": rep.chunks / busy * n if busy else 0.0,
                    "per_actor": [
                        (w.worker, w.chunks, w.chunks_per_second, w.embedded_per_second) for w in rep.workers
                    ],
                    "split": {
                        "read": rep.read_s,
                        "chunk": rep.chunk_s,
                        "diff": rep.diff_s,
                        "embed": rep.embed_s,
                        "write": rep.write_s,
                    },
                    "overhead": rep.seconds - rep.read_s - busy / n,
                }
            )
            print(f"ray, {n} actors: {rep.chunks} chunks in {rep.seconds:.1f} s", flush=True)
    finally:
        ray.shutdown()
    return rows


def print_ingest(rows: list[dict[str, Any]], docs: int) -> None:
    print(f"\n## Ingest of {docs} SciFact documents (chunks of <= 128 tokens)\n")
    print("| setup | chunks | wall s | chunks/s (wall) | chunks/s (busy, all actors) | start-up + idle s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        busy = f"{r['busy_rate']:.1f}" if "busy_rate" in r else "-"
        over = f"{r['overhead']:.1f}" if "overhead" in r else "-"
        print(f"| {r['setup']} | {r['chunks']} | {r['wall']:.1f} | {r['rate']:.1f} | {busy} | {over} |")
    print("\n| setup | actor | chunks | chunks/s busy | embedded/s (encoder) |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        for worker, chunks, rate, erate in r.get("per_actor", []):
            print(f"| {r['setup']} | {worker} | {chunks} | {rate:.1f} | {erate:.1f} |")
    print("\nTime split (seconds; chunk/diff/embed/write summed over the actors):\n")
    print("| setup | read (driver) | chunk | diff | embed | write | embed share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        s = r.get("split")
        if not s:
            continue
        work = s["chunk"] + s["diff"] + s["embed"] + s["write"]
        share = s["embed"] / work if work else 0.0
        print(
            f"| {r['setup']} | {s['read']:.2f} | {s['chunk']:.2f} | {s['diff']:.2f} | {s['embed']:.2f} | "
            f"{s['write']:.2f} | {share:.0%} |"
        )


# ---------------------------------------------------------------------------------------------------- writes
def _writer(job: tuple[str, int, int, int, int, float, int]) -> float:
    """One client process: write its share of precomputed chunks in batches; returns when it finished."""
    collection, port, first, count, batch, start_at, dim = job
    from shortlist import Encoder
    from shortlist.store import ChunkRecord, ChunkStore

    store = ChunkStore(collection, host=HOST, port=port, encoder=Encoder())
    rng = np.random.default_rng(first)
    words = "cell protein gene expression patient cohort trial dose tumour signal pathway receptor".split()
    records = [
        ChunkRecord(
            source=f"doc-{i}",
            chunk=0,
            text=" ".join(rng.choice(words, 90)),
            tokens=100,
            metadata={"title": f"Document {i}", "kind": "synthetic"},
        )
        for i in range(first, first + count)
    ]
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    time.sleep(max(0.0, start_at - time.time()))
    for s in range(0, count, batch):
        store.upsert(records[s : s + batch], vectors[s : s + batch])
    return time.time()


def write_sweep(args: argparse.Namespace, port: int) -> list[tuple[int, int, float]]:
    from shortlist import Encoder
    from shortlist.store import ChunkStore

    encoder = Encoder()
    total = args.write_chunks
    out = []
    ctx = mp.get_context("spawn")
    concurrencies = [int(c) for c in args.clients.split(",")]
    with ctx.Pool(max(concurrencies)) as pool:
        pool.map(time.sleep, [0.0] * max(concurrencies))  # the processes up before timing
        for batch in (int(b) for b in args.write_batches.split(",")):
            for clients in concurrencies:
                name = f"bench-write-{batch}-{clients}"
                ChunkStore(name, host=HOST, port=port, encoder=encoder)  # created once, before the clients
                share = total // clients
                start_at = time.time() + 3.0  # after every client has built its records
                jobs = [(name, port, i * share, share, batch, start_at, encoder.dimension) for i in range(clients)]
                ends = pool.map(_writer, jobs)
                rate = share * clients / (max(ends) - start_at)
                out.append((batch, clients, rate))
                print(f"writes: batch {batch}, {clients} clients: {rate:.0f} chunks/s", flush=True)
    return out


def print_writes(cells: list[tuple[int, int, float]], total: int) -> None:
    print(f"\n## Chroma server write rate ({total} chunks per cell, ChunkStore.upsert with its journal)\n")
    clients = sorted({c for _, c, _ in cells})
    print("| batch | " + " | ".join(f"{c} client{'s' if c > 1 else ''}" for c in clients) + " |")
    print("|---:|" + "---:|" * len(clients))
    for batch in sorted({b for b, _, _ in cells}):
        rates = {c: r for b, c, r in cells if b == batch}
        print(f"| {batch} | " + " | ".join(f"{rates[c]:.0f}" for c in clients) + " |")


def print_bottleneck(rows: list[dict[str, Any]], cells: list[tuple[int, int, float]]) -> None:
    rates = [erate for r in rows for _, _, _, erate in r.get("per_actor", []) if erate > 0]
    if not rates or not cells:
        return
    actor = float(np.median(rates))
    best = max(cells, key=lambda c: c[2])
    print("\n## Where the bottleneck moves\n")
    print(f"- one actor embeds {actor:.1f} chunks/s (median over the runs above)")
    print(f"- the server accepted at best {best[2]:.0f} chunks/s (batches of {best[0]}, {best[1]} clients)")
    print(
        f"- so one Chroma server keeps up with about {best[2] / actor:.0f} actors like these; past that, ingest is "
        "bound by the server's writes (more clients or bigger batches stop helping: see the table), not the encoder"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=120, help="SciFact documents to ingest")
    ap.add_argument("--actors", default="1,2")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--batch-size", type=int, default=16, help="documents per Ray task")
    ap.add_argument("--backend", default="onnx", choices=["onnx", "onnx-int8", "torch"])
    ap.add_argument("--write-chunks", type=int, default=3000, help="chunks per write cell")
    ap.add_argument("--write-batches", default="64,256,1024")
    ap.add_argument("--clients", default="1,2,4")
    ap.add_argument("--chroma-url", default=None, help="an existing chroma run (default: start one here)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-writes", action="store_true")
    ap.add_argument("--skip-single", action="store_true", help="no single-process reference")
    ap.add_argument("--quick", action="store_true", help="40 documents, 2000 chunks per write cell")
    args = ap.parse_args()
    if args.quick:
        args.docs, args.write_chunks, args.write_batches = 40, 2000, "64,256"
    with tempfile.TemporaryDirectory(prefix="shortlist-bench-ray-") as tmp:
        folder = Path(tmp)
        proc = None
        if args.chroma_url:
            port = int(args.chroma_url.rsplit(":", 1)[1].strip("/"))
        else:
            proc, port = start_chroma(folder)
        try:
            rows: list[dict[str, Any]] = []
            cells: list[tuple[int, int, float]] = []
            if not args.skip_ingest:
                rows = ingest(args, beir_slice(folder, args.docs), port)
            if not args.skip_writes:
                cells = write_sweep(args, port)
            print(
                f"\n(chroma run on {HOST}:{port}; Ray {args.cpus} CPUs; backend {args.backend}; "
                f"load average {os.getloadavg()[0]:.1f})"
            )
            if rows:
                print_ingest(rows, args.docs)
            if cells:
                print_writes(cells, args.write_chunks)
            print_bottleneck(rows, cells)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
