"""How `shortlist serve` answers while its `chroma run` is down, frozen, and back: status and time of each answer.

A real `chroma run` on 127.0.0.1 (a temporary folder) holds a small collection; the `shortlist serve` application
(in-process, FastAPI's test client, `create_app(chroma=URL)`) searches it. The script times `/api/search` (hybrid and
dense) and `/health` with the server up, stopped (SIGTERM: connections refused), started again on the same port, and
frozen (SIGSTOP: connections accepted, never answered; `SHORTLIST_CHROMA_TIMEOUT` bounds the wait), and prints a
table (median and max of a few requests each).

    python benchmarks/server_down.py
    python benchmarks/server_down.py --timeout 3 --repeat 9
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

COLLECTION = "server-down"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """``chroma run`` on 127.0.0.1:port; returns the process and the seconds until its heartbeat answered."""
    chroma = Path(sys.executable).with_name("chroma")
    command = [str(chroma), "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2):
                return proc, time.perf_counter() - started
        except OSError:
            if proc.poll() is not None or time.perf_counter() - started > 120:
                raise SystemExit("chroma run did not start") from None
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--timeout", type=float, default=3.0, help="SHORTLIST_CHROMA_TIMEOUT for the frozen case.")
    parser.add_argument("--repeat", type=int, default=5, help="Requests per row.")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from shortlist import Encoder, Prefilter
    from shortlist.server import create_app

    rows: list[tuple[str, int, float, float]] = []

    def timed(name: str, call: Callable[[], Any], repeat: int = args.repeat) -> None:
        times, status = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            status = call().status_code
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        rows.append((name, status, times[len(times) // 2], times[-1]))

    with tempfile.TemporaryDirectory(prefix="shortlist-server-down-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc, first_start = start_chroma(Path(tmp), port)
        encoder = Encoder.shared()
        encoder.load()
        writer = Prefilter(COLLECTION, host="127.0.0.1", port=port, encoder=encoder)
        writer.add_documents([{"id": f"d{i}", "text": f"Note {i}: cats sleep, tides turn."} for i in range(50)])
        try:
            with TestClient(create_app(encoder=encoder, chroma=url, collection=COLLECTION)) as client:

                def search(mode: str = "hybrid", collection: str = COLLECTION) -> Any:
                    body = {"query": "cats", "k": 3, "mode": mode, "collection": collection}
                    return client.post("/api/search", json=body)

                timed("up: search hybrid", search)
                timed("up: search dense", lambda: search("dense"))
                proc.terminate()
                proc.wait()
                timed("stopped: search hybrid (store open)", search)
                timed("stopped: search dense (store open)", lambda: search("dense"))
                timed("stopped: search, a collection not open yet", lambda: search(collection="not-open-yet"))
                timed("stopped: /health (degraded)", lambda: client.get("/health"))
                proc, again = start_chroma(Path(tmp), port)
                started = time.perf_counter()
                while search().status_code != 200:
                    time.sleep(0.01)
                recovered_ms = (time.perf_counter() - started) * 1000
                timed("started again: search hybrid", search)
                proc.send_signal(signal.SIGSTOP)
                os.environ["SHORTLIST_CHROMA_TIMEOUT"] = str(args.timeout)
                timed(
                    f"frozen: search, a collection not open yet (timeout {args.timeout:g} s)",
                    lambda: search(collection="not-open-yet"),
                    1,
                )
                proc.send_signal(signal.SIGCONT)
        finally:
            proc.terminate()
            proc.wait()

    print("| what | status | median ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, status, median, worst in rows:
        print(f"| {name} | {status} | {median:.1f} | {worst:.1f} |")
    print(
        f"\nchroma run start: {first_start:.1f} s (again: {again:.1f} s); the first 200 after its heartbeat answered "
        f"again: {recovered_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
