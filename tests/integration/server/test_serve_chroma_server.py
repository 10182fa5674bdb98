"""Two `shortlist serve` processes on one real `chroma run` (127.0.0.1): the same answers, a write seen by both, a
Chroma server that stops (503 with a JSON error that names it, /health degraded) and starts again (200 again, by
itself, in the same processes).

The processes are started once for the module (a serve start loads the model); the tests run in file order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from shortlist import Encoder
from shortlist.cli import cli
from tests.conftest import ChromaRun, free_port

COLLECTION = "serve-shared"
DOCS = {
    "cats.txt": "Cats sleep for most of the day. A cat purrs when it is content and hunts mice at night.",
    "python.md": "To catch several exceptions in one except clause, list them in a tuple: except (A, B).",
    "finance.txt": "The stock market fell sharply on Monday as interest rates rose and investors sold bonds.",
    "tides.txt": "The gravity of the moon pulls the oceans and causes the high and low tides.",
}
NEW_DOC = "Quokkas are small wallabies that live on Rottnest Island; zorblefrump is their keeper's made-up word."
#: The lead's journal makes keyword and hybrid search see another process's write within 2 s; 5 s of slack here.
KEYWORD_BOUND_S = 5.0


@dataclass
class Serve:
    """One `shortlist serve` process on 127.0.0.1."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def search(self, query: str, **options: Any) -> httpx.Response:
        body = {"query": query, "collection": COLLECTION, **options}
        return httpx.post(f"{self.url}/api/search", json=body, timeout=30, trust_env=False)

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/health", timeout=30, trust_env=False)


def start_serve(chroma: ChromaRun, folder: Path) -> Serve:
    port = free_port()
    log = folder / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "SHORTLIST_CHROMA_PATH"}
    env.update(HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1", ANONYMIZED_TELEMETRY="False")
    command = [
        sys.executable, "-m", "shortlist", "serve", "--port", str(port), "--chroma-url", chroma.url,
        "--collection", COLLECTION, "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Serve(port, proc, log)


def wait_ready(serve: Serve, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.proc.poll() is not None:
            pytest.fail(f"shortlist serve exited with {serve.proc.returncode}: {serve.log.read_text()[-2000:]}")
        try:
            if serve.health().status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"shortlist serve did not answer within {timeout:.0f} s: {serve.log.read_text()[-2000:]}")


def stop_serve(serve: Serve) -> None:
    serve.proc.terminate()
    try:
        serve.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        serve.proc.kill()
        serve.proc.wait(timeout=20)


def index(chroma: ChromaRun, folder: Path) -> None:
    """`shortlist index FOLDER --chroma-url ...` (in this process: the writer)."""
    result = CliRunner().invoke(cli, ["index", str(folder), "--chroma-url", chroma.url, "-c", COLLECTION])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaRun]:
    server = ChromaRun(tmp_path_factory.mktemp("serve-chroma")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def serves(
    chroma: ChromaRun, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Serve, Serve]]:
    corpus = tmp_path_factory.mktemp("serve-corpus")
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index(chroma, corpus)
    logs = tmp_path_factory.mktemp("serve-logs")
    pair = (start_serve(chroma, logs), start_serve(chroma, logs))  # both load the model at once
    try:
        for serve in pair:
            wait_ready(serve)
        yield pair
    finally:
        for serve in pair:
            stop_serve(serve)


def hits(response: httpx.Response) -> list[tuple[str, float]]:
    assert response.status_code == 200, response.text
    return [(h["id"], round(h["score"], 4)) for h in response.json()["hits"]]


def test_two_serve_processes_on_one_chroma_run_answer_alike(serves: tuple[Serve, Serve], chroma: ChromaRun) -> None:
    a, b = serves
    for mode in ("hybrid", "dense", "keyword"):
        question = "What causes the tides of the oceans?"
        first, second = a.search(question, k=3, mode=mode), b.search(question, k=3, mode=mode)
        assert hits(first) == hits(second), mode
        assert first.json()["hits"][0]["source"].endswith("tides.txt"), mode
    health = a.health().json()
    assert health["status"] == "ok" and health["db"] == chroma.url and health["collections"] == {COLLECTION: 4}
    missing = httpx.post(f"{a.url}/api/search", json={"query": "tides", "collection": "nope"}, trust_env=False)
    assert missing.status_code == 404  # and the command that builds it names this server
    assert f"shortlist index PATH --collection nope --chroma-url {chroma.url}" in missing.json()["error"]


def test_a_write_is_seen_by_both(serves: tuple[Serve, Serve], chroma: ChromaRun, tmp_path: Path) -> None:
    (tmp_path / "quokkas.txt").write_text(NEW_DOC, encoding="utf-8")
    index(chroma, tmp_path)  # a third process writes (serve has no write endpoint)
    for serve in serves:  # dense reads Chroma: at once
        top = serve.search("small wallabies on Rottnest Island", k=1, mode="dense").json()["hits"][0]
        assert top["source"].endswith("quokkas.txt")
    for serve in serves:  # keyword and hybrid: within the journal's bound, no refresh call
        for mode in ("keyword", "hybrid"):
            deadline = time.monotonic() + KEYWORD_BOUND_S
            while True:
                found = [h["source"] for h in serve.search("zorblefrump", k=3, mode=mode).json()["hits"]]
                if any(s.endswith("quokkas.txt") for s in found) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert any(s.endswith("quokkas.txt") for s in found), (serve.port, mode, found)


def test_chroma_down_is_503_then_serve_recovers_by_itself(serves: tuple[Serve, Serve], chroma: ChromaRun) -> None:
    where = f"127.0.0.1:{chroma.port}"
    before = [hits(serve.search("Do cats purr?", k=2)) for serve in serves]
    chroma.stop()
    try:
        for serve in serves:
            for mode in ("hybrid", "dense", "keyword"):
                down = serve.search("Do cats purr?", k=2, mode=mode)  # a hang would be httpx's timeout (30 s)
                assert down.status_code == 503, (mode, down.status_code, down.text)
                error = down.json()["error"]
                assert where in error and "Chroma" in error, error
            health = serve.health()
            assert health.status_code == 200
            assert health.json()["status"] == "degraded" and where in health.json()["store_error"]
            assert serve.proc.poll() is None  # still serving
    finally:
        chroma.start()
    for serve, previous in zip(serves, before, strict=True):
        deadline = time.monotonic() + 30
        while (answer := serve.search("Do cats purr?", k=2)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hits(answer) == previous
        assert serve.health().json()["status"] == "ok"


def test_serve_starts_while_chroma_is_down_and_searches_once_it_is_up(encoder: Encoder, chroma: ChromaRun) -> None:
    """Workers started before their `chroma run` (a compose file's order) serve at once: degraded, then 200."""
    from fastapi.testclient import TestClient

    from shortlist.server import create_app

    chroma.stop()
    try:
        with TestClient(create_app(encoder=encoder, chroma=chroma.url, collection=COLLECTION)) as client:
            assert client.get("/health").json()["status"] == "degraded"
            down = client.post("/api/search", json={"query": "Do cats purr?"})
            assert down.status_code == 503 and f"127.0.0.1:{chroma.port}" in down.json()["error"]
            assert client.post("/api/embed", json={"input": "cats"}).status_code == 200  # no store needed
            chroma.start()
            up = client.post("/api/search", json={"query": "Do cats purr?", "k": 1})
            assert up.status_code == 200 and up.json()["hits"][0]["source"].endswith("cats.txt")
            assert client.get("/health").json()["status"] == "ok"
    finally:
        if chroma.proc is None:
            chroma.start()


def test_a_raw_connection_error_is_a_503_naming_the_server(encoder: Encoder) -> None:
    """A failed connection that reaches the app unwrapped (not a StoreError) is a 503 that names the server."""
    from fastapi.testclient import TestClient

    from shortlist.server import create_app

    app = create_app(encoder=encoder, chroma="http://127.0.0.1:9", collection=COLLECTION)

    @app.get("/api/raw-failure")
    def raw_failure() -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/raw-failure")
    assert answer.status_code == 503
    assert "http://127.0.0.1:9 cannot be reached" in answer.json()["error"]
