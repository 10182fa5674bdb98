"""The `shortlist` command on a real `chroma run` (127.0.0.1): --chroma-url, --chroma-host/--chroma-port and
SHORTLIST_CHROMA_URL; the server stopped (one line, exit 1, no traceback) and started again (it works again)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shortlist import Encoder, Prefilter
from shortlist.cli import cli
from shortlist.config import (
    ENV_CHROMA_PATH,
    ENV_CHROMA_TIMEOUT,
    ENV_CHROMA_URL,
    ChromaServer,
    parse_chroma_url,
    resolve_chroma_location,
)
from shortlist.errors import ConfigError, StoreError
from tests.conftest import ChromaRun

DOCS = {
    "cats.txt": "Cats sleep for most of the day. A cat purrs when it is content and hunts mice at night.",
    "python.md": "# Exceptions\n\nTo catch several exceptions in one except clause, list them in a tuple.",
    "finance.txt": "The stock market fell sharply on Monday as interest rates rose and investors sold bonds.",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def _no_store_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_CHROMA_URL, ENV_CHROMA_PATH):
        monkeypatch.delenv(name, raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m shortlist ARGS`` in a process of its own (its stderr is what a user sees)."""
    base = {k: v for k, v in os.environ.items() if k not in (ENV_CHROMA_URL, ENV_CHROMA_PATH)}
    base.update(HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1", ANONYMIZED_TELEMETRY="False", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "shortlist", *args], capture_output=True, text=True, env=base, timeout=120, check=False
    )


# ---------------------------------------------------------------------------------------------- the options
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--db", "x", "--chroma-url", "http://127.0.0.1:9"], "--db and --chroma-url name two databases"),
        (["--chroma-url", "http://127.0.0.1:9", "--chroma-host", "h"], "--chroma-url and --chroma-host name two"),
        (["--db", "x", "--chroma-host", "h"], "--db and --chroma-host name two databases"),
        (["--chroma-port", "8000"], "--chroma-port needs --chroma-host"),
        (["--chroma-url", "https://h:1"], "only http:// is supported"),
        (["--chroma-url", "http://h:1/api/v2"], "more than a host and a port"),
        (["--chroma-url", "http://h:99999"], "bad port"),
    ],
)
def test_conflicting_or_bad_server_options_are_usage_errors(args: list[str], says: str) -> None:
    result = run("query", "anything", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_the_environment_variable_and_its_conflicts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_CHROMA_URL, "ftp://h")
    result = run("query", "anything")
    assert result.exit_code == 1 and "SHORTLIST_CHROMA_URL 'ftp://h'" in result.output
    monkeypatch.setenv(ENV_CHROMA_URL, "http://127.0.0.1:9")
    monkeypatch.setenv(ENV_CHROMA_PATH, str(tmp_path))
    result = run("query", "anything")
    assert result.exit_code == 1 and "Both SHORTLIST_CHROMA_URL" in result.output and "unset one" in result.output
    with pytest.raises(ConfigError, match="Both SHORTLIST_CHROMA_URL"):
        resolve_chroma_location()
    # an explicit choice on the command line or in code settles it
    assert resolve_chroma_location(tmp_path) == tmp_path
    assert resolve_chroma_location(url="h:1") == ChromaServer("h", 1)
    monkeypatch.delenv(ENV_CHROMA_PATH)
    assert resolve_chroma_location() == ChromaServer("127.0.0.1", 9)


def test_urls() -> None:
    assert parse_chroma_url("http://127.0.0.1:8000/") == ChromaServer("127.0.0.1", 8000)
    assert parse_chroma_url("localhost:9000").url == "http://localhost:9000"
    assert parse_chroma_url("chroma").port == 8000
    assert parse_chroma_url("http://[::1]:8001").url == "http://[::1]:8001"
    for bad in ("https://h", "http://", "http://h:0", "http://h/x", "http://u:p@h:1"):
        with pytest.raises(ConfigError):
            parse_chroma_url(bad)


@pytest.mark.parametrize("command", ["index", "query", "eval", "info", "serve"])
def test_every_command_with_a_database_takes_the_server_options(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    for option in ("--db", "--chroma-url", "--chroma-host", "--chroma-port", "SHORTLIST_CHROMA_URL"):
        assert option in result.output, (command, option)


# ---------------------------------------------------------------------------------------------- on a real server
def test_index_query_info_and_the_default_store_on_a_server(
    chroma_run: ChromaRun, encoder: Encoder, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = run("index", str(corpus), "--chroma-url", chroma_run.url, "-c", "cli-server", "--json")
    assert indexed.exit_code == 0, indexed.output
    summary = json.loads(indexed.output)
    assert summary["db"] == chroma_run.url and summary["total_chunks"] == 3

    found = run(
        "query", "Why do cats purr?", "--chroma-host", chroma_run.host, "--chroma-port", str(chroma_run.port),
        "-c", "cli-server", "-k", "1", "--json",
    )  # fmt: skip
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["hits"][0]["source"].endswith("cats.txt")

    missing = run("query", "cats", "--chroma-url", chroma_run.url, "-c", "no-such")
    assert missing.exit_code == 1
    assert f"No collection 'no-such' in {chroma_run.url}" in missing.output
    assert f"--chroma-url {chroma_run.url}" in missing.output  # the command that builds it, on this server

    monkeypatch.setenv(ENV_CHROMA_URL, chroma_run.url)  # no --db: the server is the default store...
    info = run("info", "--json")
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["collections"] == {"cli-server": 3}
    prefilter = Prefilter("cli-server", encoder=encoder)  # ...of the library too
    assert prefilter.store.kind == "server" and prefilter.store.port == chroma_run.port and prefilter.count() == 3
    on_disk = run("info", "--json", "--db", str(corpus.parent / "db"))  # and --db still beats the variable
    assert json.loads(on_disk.output)["collections"] == {}


def test_a_server_that_is_down_is_one_line_and_exit_1_then_it_works_again(
    chroma_run: ChromaRun, encoder: Encoder, corpus: Path
) -> None:
    indexed = run("index", str(corpus), "--chroma-url", chroma_run.url, "-c", "cli-down")
    assert indexed.exit_code == 0, indexed.output
    prefilter = Prefilter("cli-down", host=chroma_run.host, port=chroma_run.port, encoder=encoder)
    chroma_run.stop()
    for mode in ("dense", "hybrid", "keyword"):  # the library's StoreError names the server too
        with pytest.raises(StoreError, match=f"Chroma server at {chroma_run.url} cannot be reached"):
            prefilter.search("Why do cats purr?", k=1, mode=mode)  # type: ignore[arg-type]
    for args in (
        ["query", "Why do cats purr?", "--chroma-url", chroma_run.url, "-c", "cli-down"],
        ["index", str(corpus), "-c", "cli-down"],  # through the environment variable
        ["info"],
    ):
        down = run_process(*args, env={ENV_CHROMA_URL: chroma_run.url})
        lines = down.stderr.strip().splitlines()
        assert down.returncode == 1, (args, down.stderr)
        assert len(lines) == 1 and "Traceback" not in down.stderr, down.stderr
        assert lines[0].startswith("Error: ") and f"127.0.0.1:{chroma_run.port}" in lines[0], lines[0]
        assert "running" in lines[0]  # it says what to check
    chroma_run.start()
    back = run_process("query", "Why do cats purr?", "--chroma-url", chroma_run.url, "-c", "cli-down", "-k", "1")
    assert back.returncode == 0, back.stderr
    assert "cats.txt" in back.stdout


def test_a_server_that_hangs_fails_within_the_timeout(chroma_run: ChromaRun, encoder: Encoder, corpus: Path) -> None:
    """A `chroma run` frozen with SIGSTOP accepts connections and never answers: chromadb's client would wait
    forever; shortlist's requests fail after SHORTLIST_CHROMA_TIMEOUT (here 2 s) with one line, then work again."""
    indexed = run("index", str(corpus), "--chroma-url", chroma_run.url, "-c", "cli-hung")
    assert indexed.exit_code == 0, indexed.output
    prefilter = Prefilter("cli-hung", host=chroma_run.host, port=chroma_run.port, encoder=encoder)  # opened first
    assert chroma_run.proc is not None
    chroma_run.proc.send_signal(signal.SIGSTOP)
    try:
        hung = run_process(
            "query", "cats", "--chroma-url", chroma_run.url, "-c", "cli-hung", env={ENV_CHROMA_TIMEOUT: "2"}
        )
        assert hung.returncode == 1 and len(hung.stderr.strip().splitlines()) == 1, hung.stderr
        assert "timed out" in hung.stderr and f"127.0.0.1:{chroma_run.port}" in hung.stderr, hung.stderr
        with pytest.raises(StoreError):  # an open store: the default bound (60 s) is set on its session; 2 s here
            open_session_timeout(prefilter, 2.0)
            prefilter.search("Why do cats purr?", k=1, mode="dense")
    finally:
        chroma_run.proc.send_signal(signal.SIGCONT)
    open_session_timeout(prefilter, 60.0)
    assert prefilter.search("Why do cats purr?", k=1, mode="dense").hits[0].metadata["source"].endswith("cats.txt")


def open_session_timeout(prefilter: Prefilter, seconds: float) -> None:
    """Set the bound of the store's HTTP session (what SHORTLIST_CHROMA_TIMEOUT sets when the store opens)."""
    from shortlist.store.client import _bound_requests

    _bound_requests(prefilter.store.client, seconds)


def test_a_raw_connection_error_is_still_one_line() -> None:
    """A failed connection that reaches the group unwrapped (not a StoreError) is one line, not a traceback."""
    import click
    import httpx

    from shortlist.cli.group import ShortlistGroup

    @click.group(cls=ShortlistGroup)
    def group() -> None: ...

    @group.command()
    def fails() -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    result = CliRunner().invoke(group, ["fails"])
    assert result.exit_code == 1 and result.output.strip() == "Error: Chroma: [Errno 111] Connection refused"
