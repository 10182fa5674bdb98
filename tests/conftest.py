"""Shared fixtures: the real model loaded once per session, isolated SHORTLIST_* settings, no network.

Every test runs with non-loopback network access blocked (pytest-socket): shortlist must work offline, and a test
that reaches for the internet fails instead of silently depending on it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shortlist import Encoder

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    # Block sockets except loopback (the tests' own Chroma and HTTP servers) for the whole run.
    if config.pluginmanager.hasplugin("socket") or config.pluginmanager.hasplugin("pytest_socket"):
        config.option.allow_hosts = "127.0.0.1,::1,localhost"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point shortlist's folders at temporary ones; drop any SHORTLIST_* settings of the developer's shell."""
    for name in list(os.environ):
        if name.startswith("SHORTLIST_") and name != "SHORTLIST_CACHE":
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("shortlist-home")
    monkeypatch.setenv("SHORTLIST_HOME", str(home))
    # The cache (exported ONNX models, weight hashes) is shared by the whole session: exporting is slow.
    monkeypatch.setenv("SHORTLIST_CACHE", str(_session_cache(tmp_path_factory)))


_CACHE: Path | None = None


def _session_cache(factory: pytest.TempPathFactory) -> Path:
    global _CACHE
    if _CACHE is None:
        _CACHE = factory.mktemp("shortlist-cache")
    return _CACHE


@pytest.fixture(scope="session", autouse=True)
def _session_cache_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """SHORTLIST_CACHE set for the whole session, so the session-scoped encoders (set up before any per-test
    fixture) export their ONNX graphs to the session's cache too, not to the developer's ``~/.cache``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHORTLIST_CACHE", str(_session_cache(tmp_path_factory)))
        yield


@pytest.fixture(scope="session")
def encoder() -> Iterator[Encoder]:
    """The process's shared default encoder (``onnx`` on the CPU) over the packaged weights, loaded once."""
    enc = Encoder.shared()
    enc.load()
    yield enc


@pytest.fixture(scope="session")
def torch_encoder() -> Iterator[Encoder]:
    """The shared sentence-transformers (torch) encoder: the reference backend."""
    enc = Encoder.shared(backend="torch")
    enc.load()
    yield enc


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of the public evaluation sets (``../shared/data``); skips if it is not beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not there (it sits beside the checkout in CI)")
    return SHARED_DATA


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chroma_cli() -> str:
    """The ``chroma`` command of this environment (skips the test when it is not installed)."""
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.is_file() else shutil.which("chroma")
    if not found:
        pytest.skip("the `chroma` command is not installed")
    return found


class ChromaRun:
    """A real ``chroma run`` on 127.0.0.1 with its own folder and port, which a test can stop and start again.

    Args:
        folder: Holds the server's database (``db/``) and its log (``server.log``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60) -> ChromaRun:
        """Start the server (same folder, same port) and wait until its heartbeat answers."""
        log = (self.folder / "server.log").open("ab")
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        command = [
            chroma_cli(),
            "run",
            "--path",
            str(self.folder / "db"),
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                tail = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"chroma run exited with {self.proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer within {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s); its folder stays."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """One ``chroma run`` for the whole session, as ``(host, port)``; always stopped. Give each test its own
    collection names."""
    server = ChromaRun(tmp_path_factory.mktemp("chroma-server")).start()
    try:
        yield server.host, server.port
    finally:
        server.stop()


@pytest.fixture
def chroma_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaRun]:
    """A ``chroma run`` of this test's own, started, which the test may :meth:`~ChromaRun.stop` and
    :meth:`~ChromaRun.start` again; stopped at the end."""
    server = ChromaRun(tmp_path_factory.mktemp("chroma-run")).start()
    try:
        yield server
    finally:
        server.stop()
