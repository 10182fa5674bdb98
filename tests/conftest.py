"""Shared fixtures: the real model loaded once per session, isolated SHORTLIST_* settings, no network.

Every test runs with non-loopback network access blocked (pytest-socket): shortlist must work offline, and a test
that reaches for the internet fails instead of silently depending on it.
"""

from __future__ import annotations

import os
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
