"""Fixtures of the `shortlist serve` tests: a real uvicorn server on a free 127.0.0.1 port, in a thread of the test
process, over the session's real encoder and a small on-disk Chroma collection."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shortlist import Encoder, Prefilter

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from shortlist.server import create_app  # noqa: E402
from shortlist.server.app import Limits  # noqa: E402

COLLECTION = "server-docs"
DOCS = [
    {"id": "cats", "text": "Cats sleep for most of the day. A cat purrs when it is content.",
     "metadata": {"lang": "en"}},
    {"id": "python", "text": "To catch several exceptions in one except clause, list them in a tuple.",
     "metadata": {"lang": "en"}},
    {"id": "market", "text": "The stock market fell sharply as interest rates rose.", "metadata": {"lang": "en"}},
    {"id": "versand", "text": "Wir versenden Pakete innerhalb von zwei Tagen.", "metadata": {"lang": "de"}},
    {"id": "hunde", "text": "Hunde schlafen gern in der Sonne und bellen laut.", "metadata": {"lang": "de"}},
]  # fmt: skip
#: Small limits, so each one can be crossed by a test with little data.
LIMITS = Limits(max_body_bytes=256 * 1024, max_inputs=32, max_text_chars=4000, max_csv_rows=200, max_queue=4096)
API_KEY = "test-key-5f1c"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class LiveServer:
    """A uvicorn server running an app in a thread, on 127.0.0.1."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def app(self):  # type: ignore[no-untyped-def]
        return self.server.config.app


def start_server(app: object) -> LiveServer:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=15)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients (httpx inside ollama/openai) read proxy variables: make sure they talk to 127.0.0.1 directly."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def server_db(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """An embedded Chroma folder with one small collection of English and German documents."""
    db = tmp_path_factory.mktemp("server-db")
    with Prefilter(COLLECTION, path=db, encoder=encoder) as pf:  # closed: the folder is free for the apps
        pf.add_documents(DOCS)
    return db


@pytest.fixture(scope="session")
def live(encoder: Encoder, server_db: Path) -> Iterator[LiveServer]:
    """The server every API test talks to: no API key, small limits, batching on."""
    app = create_app(encoder=encoder, db=server_db, collection=COLLECTION, api_key="", limits=LIMITS)
    srv = start_server(app)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def live_with_key(encoder: Encoder, server_db: Path) -> Iterator[LiveServer]:
    """The same service behind an API key."""
    app = create_app(encoder=encoder, db=server_db, collection=COLLECTION, api_key=API_KEY, limits=LIMITS)
    srv = start_server(app)
    yield srv
    stop_server(srv)


def env_without_proxies() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env
