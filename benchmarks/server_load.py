"""Loopback load test of `shortlist serve`: requests/s, p50/p99 latency and errors at rising concurrency.

Two real `shortlist serve` processes on 127.0.0.1 answer `POST /api/embed` with one short text per request:
- **batched**: the normal server (concurrent requests share encoder batches);
- **one-at-a-time**: the same server with `--no-batching`, each request its own forward pass, one after the other
  (what a server that handles one request at a time does).
Both are driven by the same load generator (N clients, each a keep-alive HTTP/1.1 connection sending its next request
as soon as the last answer arrives), interleaved level by level, so machine noise hits both alike. The same encoder
called in-process (one text per call, and batches of 64) is the ceiling the server's overhead is measured against.
Every run is bounded by a request count and a time limit. The servers' resident memory (RSS) is reported before and
after the whole load.

    python benchmarks/server_load.py                  # levels 1, 8, 32, 128
    python benchmarks/server_load.py --quick          # fewer requests per level
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

HOST = "127.0.0.1"


def texts(n: int) -> list[str]:
    topics = ["the weather", "a train delay", "password resets", "cheap flights", "a lost parcel", "python lists"]
    return [f"Question {i}: what should I know about {topics[i % len(topics)]}?" for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    rss: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/health", timeout=30, trust_env=False).json())


def start(name: str, extra: list[str], home: Path, threads: int) -> Server:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(SHORTLIST_HOME=str(home), NO_PROXY="127.0.0.1", OMP_NUM_THREADS=str(threads))
    env.pop("SHORTLIST_API_KEY", None)
    cmd = [sys.executable, "-m", "shortlist", "serve", "--host", HOST, "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd + extra, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(name, port, proc)
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if server.health()["model_loaded"]:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} server did not start in 180 s")
        time.sleep(0.3)


@dataclass
class Run:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    mean_batch: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


async def _client(port: int, bodies: list[bytes], counter: list[int], limit: int, deadline: float, out: Run) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while counter[0] < limit and time.perf_counter() < deadline:
            i = counter[0]
            counter[0] += 1
            body = bodies[i % len(bodies)]
            head = (
                f"POST /api/embed HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            t0 = time.perf_counter()
            try:
                writer.write(head + body)
                await writer.drain()
                raw = await reader.readuntil(b"\r\n\r\n")
                status = int(raw.split(b" ", 2)[1])
                length = 0
                for line in raw.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                payload = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                out.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            out.latencies_ms.append((time.perf_counter() - t0) * 1000)
            if status != 200 or not payload.startswith(b'{"model"'):
                out.errors += 1
    finally:
        writer.close()


def load(server: Server, clients: int, requests: int, seconds: float, bodies: list[bytes]) -> Run:
    before = server.health()["batching"]
    run = Run(0, 0.0, [], 0, 0.0)

    async def main() -> None:
        counter = [0]
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_client(server.port, bodies, counter, requests, deadline, run) for _ in range(clients)))
        run.seconds = time.perf_counter() - started
        run.requests = len(run.latencies_ms)

    asyncio.run(main())
    after = server.health()["batching"]
    batches = after["batches"] - before["batches"]
    run.mean_batch = (after["texts"] - before["texts"]) / batches if batches else 0.0
    return run


def in_process(sample: list[str], seconds: float, threads: int) -> tuple[Run, float]:
    """The encoder called directly: one text per call (latency, calls/s), and batches of 64 (texts/s)."""
    import torch

    from shortlist import Encoder

    torch.set_num_threads(threads)
    enc = Encoder.shared().load()
    enc.embed_documents(sample[:64])
    lat: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    started = time.perf_counter()
    while time.perf_counter() < deadline and i < 2000:
        t0 = time.perf_counter()
        enc.embed_documents([sample[i % len(sample)]])
        lat.append((time.perf_counter() - t0) * 1000)
        i += 1
    single = Run(len(lat), time.perf_counter() - started, lat, 0, 1.0)
    n = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline or n == 0:
        enc.embed_documents(sample[(n * 64) % len(sample) :][:64] or sample[:64])
        n += 1
    return single, n * 64 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,8,32,128", help="Concurrent clients per run (default 1,8,32,128).")
    parser.add_argument("--requests", type=int, default=1500, help="Most requests per run (default 1500).")
    parser.add_argument("--seconds", type=float, default=15.0, help="Most seconds per run (default 15).")
    parser.add_argument("--quick", action="store_true", help="300 requests / 6 s per run.")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="Torch threads per process (OMP_NUM_THREADS; default 1: on a busy "
        "2-core machine more threads than free cores makes every forward pass several times slower).",
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seconds = 300, 6.0
    levels = [int(x) for x in args.levels.split(",")]
    sample = texts(512)
    bodies = [json.dumps({"model": "all-minilm", "input": t}).encode() for t in sample]

    home = Path(tempfile.mkdtemp(prefix="shortlist-load-"))
    # A home each: the two servers would otherwise share one embedded Chroma folder, which one process may hold.
    servers = [
        start("batched", [], home / "batched", args.threads),
        start("one-at-a-time", ["--no-batching"], home / "one-at-a-time", args.threads),
    ]
    try:
        for s in servers:  # warm up: first requests pay for lazy imports and allocator growth
            load(s, 8, 200, 10, bodies)
            s.rss.append(int(s.rss_mb()))
        rows: list[tuple[str, int, Run]] = []
        for clients in levels:
            for s in servers:
                rows.append((s.name, clients, load(s, clients, args.requests, args.seconds, bodies)))
        for s in servers:
            s.rss.append(int(s.rss_mb()))
        single, batch_tps = in_process(sample, min(args.seconds, 8.0), args.threads)
    finally:
        for s in servers:
            s.proc.terminate()
            try:
                s.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                s.proc.kill()

    cpu = os.cpu_count()
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"POST /api/embed, one short text per request, loopback; {cpu} CPUs (load average {load_avg}), "
          f"{args.threads} torch thread(s) per process")  # fmt: skip
    print(f"bounded: at most {args.requests} requests or {args.seconds:.0f} s per run\n")
    print(f"{'server':<14} {'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'mean batch':>10}")  # fmt: skip
    for name, clients, r in rows:
        print(
            f"{name:<14} {clients:>7} {r.requests:>8} {r.rps:>8.1f} {r.pct(50):>8.1f} {r.pct(99):>8.1f} "
            f"{r.errors:>6} {r.mean_batch:>10.1f}"
        )
    print(
        f"{'in-process':<14} {'1':>7} {single.requests:>8} {single.rps:>8.1f} {single.pct(50):>8.1f} "
        f"{single.pct(99):>8.1f} {0:>6} {1.0:>10.1f}   (Encoder.embed_documents([text]), one call at a time)"
    )
    print(f"{'in-process':<14} {'-':>7} {'-':>8} {batch_tps:>8.1f} {'':>8} {'':>8} {0:>6} {64.0:>10.1f}   "
          "(texts/s, Encoder.embed_documents of 64 texts)")  # fmt: skip
    by = {(n, c): r for n, c, r in rows}
    top = max(levels)
    b, o = by[("batched", top)], by[("one-at-a-time", top)]
    print(f"\nat {top} clients: batched {b.rps:.0f} req/s vs one-at-a-time {o.rps:.0f} req/s "
          f"({b.rps / o.rps:.1f}x); p99 {b.pct(99):.0f} ms vs {o.pct(99):.0f} ms")  # fmt: skip
    total_errors = sum(r.errors for _, _, r in rows)
    print(f"errors: {total_errors}")
    for s in servers:
        print(f"RSS of the {s.name} server: {s.rss[0]} MB after warm-up, {s.rss[-1]} MB after the load "
              f"({s.rss[-1] - s.rss[0]:+d} MB)")  # fmt: skip
    median_one = statistics.median(r.rps for n, _, r in rows if n == "one-at-a-time")
    print(f"one-at-a-time median over the levels: {median_one:.0f} req/s")


if __name__ == "__main__":
    main()
