"""One process per embedded Chroma folder (issue 15, item 1): the second process is refused, clearly.

Chroma's embedded mode supports one client process per folder. shortlist holds ``<folder>/shortlist.lock`` while any
store of a process has the folder open; another process (a ``python -c``, the CLI, ``shortlist serve``) gets a
``StoreError`` naming the holder and ``chroma run``. Closing the last store, or the holder dying (``SIGKILL``
included), frees the folder. Several stores of one process share it. All with real processes and real Chroma.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from shortlist import Encoder, Prefilter
from shortlist.errors import StoreError
from shortlist.store import ChunkRecord, ChunkStore, folder_lock
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")

COLLECTION = "one-process"

#: Opens the folder, writes one chunk, prints its count: exit 0; a refusal prints the one-line error: exit 3.
OPEN_AND_WRITE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from shortlist.errors import StoreError
    from shortlist.store import ChunkRecord, ChunkStore
    try:
        store = ChunkStore(sys.argv[2], path=sys.argv[1])
    except StoreError as exc:
        print(exc)
        raise SystemExit(3)
    rec = ChunkRecord(source="from-child", chunk=0, text="Written by the second process.", tokens=6)
    store.upsert([rec], np.full((1, 384), 384 ** -0.5, dtype=np.float32))
    print(store.count())
    """
)


def second_process(db: Path, code: str = OPEN_AND_WRITE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, str(db), COLLECTION], capture_output=True, text=True, timeout=180, check=False
    )


def shortlist_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shortlist", *args], capture_output=True, text=True, timeout=180, check=False
    )


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(1, 384)).astype(np.float32)
    return v / np.linalg.norm(v)


def write_one(store: ChunkStore, source: str) -> None:
    store.upsert([ChunkRecord(source=source, chunk=0, text=f"Chunk of {source}.", tokens=4)], vector(len(source)))


def assert_refused(out: subprocess.CompletedProcess[str], db: Path, holder: int) -> None:
    text = out.stdout + out.stderr
    assert "Traceback" not in text, text
    assert f"open by process {holder}" in text, text
    assert f"chroma run --path {db.resolve()}" in text and "--chroma-url" in text, text


# ------------------------------------------------------------------------------------------ another process
def test_a_second_process_is_refused_until_the_first_closes(tmp_path: Path, encoder: Encoder) -> None:
    db = tmp_path / "db"
    store = ChunkStore(COLLECTION, path=db, encoder=encoder)
    write_one(store, "from-parent")
    out = second_process(db)
    assert out.returncode == 3, out.stdout + out.stderr
    assert_refused(out, db, os.getpid())
    assert store.count() == 1  # the holder is unharmed

    store.close()
    out = second_process(db)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split()[-1] == "2"
    with ChunkStore(COLLECTION, path=db, encoder=encoder) as again:  # the child has exited: ours again
        assert again.count() == 2 and again.ids_of_sources(["from-child"])
    assert folder_lock.holders(db) == 0


def test_the_cli_is_refused_in_one_line_naming_chroma_run(tmp_path: Path, encoder: Encoder) -> None:
    db = tmp_path / "db"
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "cats.txt").write_text("Cats sleep for most of the day.", encoding="utf-8")
    pf = Prefilter(COLLECTION, path=db, encoder=encoder)
    pf.add_documents(["Cats sleep for most of the day."])
    for args in (
        ["query", "cats", "-c", COLLECTION, "--db", str(db)],
        ["index", str(corpus), "-c", COLLECTION, "--db", str(db)],
        ["info", "--db", str(db)],  # reads only: refused too (Chroma's files are not safe to read meanwhile)
    ):
        out = shortlist_cli(*args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and out.stderr.count("\n") == 1, out.stderr
        assert_refused(out, db, os.getpid())
    pf.close()
    out = shortlist_cli("query", "cats", "-c", COLLECTION, "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    assert "Cats sleep" in out.stdout


def test_a_holder_killed_with_sigkill_frees_the_folder(tmp_path: Path, encoder: Encoder) -> None:
    db = tmp_path / "db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom shortlist.store import ChunkStore\n"
            "store = ChunkStore(sys.argv[2], path=sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(600)",
            str(db),
            COLLECTION,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError) as err:
            ChunkStore(COLLECTION, path=db, encoder=encoder)
        assert f"open by process {holder.pid}" in str(err.value) and "chroma run" in str(err.value)
        assert folder_lock.holders(db) == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    with ChunkStore(COLLECTION, path=db, encoder=encoder) as store:  # no stale lock left behind
        write_one(store, "after-the-kill")
        assert store.count() == 1
        assert folder_lock.holder_pid(db) == os.getpid()


def test_shortlist_index_while_shortlist_serve_holds_the_folder(tmp_path: Path, encoder: Encoder) -> None:
    """The deployment that needs `chroma run`: the refusal names the serving command."""
    pytest.importorskip("uvicorn")
    db = tmp_path / "db"
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "cats.txt").write_text("Cats sleep for most of the day. A cat purrs when it is content.")
    with Prefilter(COLLECTION, path=db, encoder=encoder) as pf:
        pf.add_documents(["The stock market fell sharply on Monday."])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shortlist",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
            "-c",
            COLLECTION,
            "--log-level",
            "warning",
        ],  # fmt: skip
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None, serve.stderr.read().decode() if serve.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "shortlist serve did not answer /health"
            time.sleep(0.3)
        out = shortlist_cli("index", str(corpus), "-c", COLLECTION, "--db", str(db))
        assert out.returncode == 1, out.stdout + out.stderr
        assert_refused(out, db, serve.pid)
        assert f"shortlist serve --port {port} --db {db}" in out.stderr  # the holder's command line
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    out = shortlist_cli("index", str(corpus), "-c", COLLECTION, "--db", str(db))  # the server has gone: it works
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------------------------ one process
def test_stores_and_prefilters_of_one_process_share_a_folder(tmp_path: Path, encoder: Encoder) -> None:
    db = tmp_path / "db"
    first = ChunkStore(COLLECTION, path=db, encoder=encoder)
    second = ChunkStore(COLLECTION, path=str(db), encoder=encoder)  # spelt differently: the same folder
    other = ChunkStore("another-collection", path=db, encoder=encoder)
    pf = Prefilter(COLLECTION, path=db, encoder=encoder)
    assert folder_lock.holders(db) == 4
    write_one(first, "doc-a")
    assert second.count() == 1 and pf.count() == 1 and other.count() == 0
    assert ChunkStore.list_collections(path=db) == {"another-collection": 0, COLLECTION: 1}
    assert folder_lock.holders(db) == 4  # list_collections gave its client back
    pf.add_documents([{"id": "doc-b", "text": "Cats sleep for most of the day."}])

    first.close()
    first.close()  # twice: nothing more happens
    assert folder_lock.holders(db) == 3
    with pytest.raises(StoreError, match="is closed: open a new ChunkStore"):
        first.get(["anything"])
    assert second.count() == 2 and pf.search("cats", k=1, mode="dense")[0].metadata["source"] == "doc-b"
    other.close()
    second.close()
    assert pf.count() == 2 and folder_lock.holders(db) == 1
    assert second_process(db).returncode == 3  # still held, by the pre-filter
    pf.close()
    assert folder_lock.holders(db) == 0
    assert second_process(db).returncode == 0


def test_closing_one_prefilter_leaves_the_others_of_the_folder_working(tmp_path: Path, encoder: Encoder) -> None:
    """Pre-filters of one collection in one process share a keyword cache: the one closed first must not take
    the cache's way to the store with it."""
    db = tmp_path / "db"
    first = Prefilter(COLLECTION, path=db, encoder=encoder)
    first.add_documents(["Cats sleep for most of the day.", "Dogs bark at night."])
    second = Prefilter(COLLECTION, path=db, encoder=encoder)
    assert second.search("cats", k=1, mode="keyword")[0].text.startswith("Cats")
    first.close()
    assert second.search("dogs", k=1, mode="keyword")[0].text.startswith("Dogs")
    second.add_documents(["Birds sing in the morning."])
    assert second.search("birds", k=1, mode="keyword")[0].text.startswith("Birds")
    assert second.search("birds", k=1, mode="hybrid")[0].text.startswith("Birds")
    second.close()
    assert folder_lock.holders(db) == 0


def test_a_prefilter_leaves_a_store_it_was_given_open(tmp_path: Path, encoder: Encoder) -> None:
    db = tmp_path / "db"
    with ChunkStore(COLLECTION, path=db, encoder=encoder) as store:
        with Prefilter(COLLECTION, store=store, encoder=encoder) as pf:
            pf.add_documents(["Cats sleep for most of the day."])
        assert not store.closed and store.count() == 1  # the pre-filter did not own it
    assert store.closed and folder_lock.holders(db) == 0


def test_a_store_that_fails_to_open_does_not_hold_the_folder(tmp_path: Path, encoder: Encoder) -> None:
    from shortlist.errors import ConfigError

    db = tmp_path / "db"
    with pytest.raises(ConfigError):
        ChunkStore("x", path=db, encoder=encoder)  # Chroma refuses the name after the client is open
    assert folder_lock.holders(db) == 0
    assert second_process(db).returncode == 0


def test_an_app_gives_the_folder_back_when_it_shuts_down(tmp_path: Path, encoder: Encoder) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from shortlist.server import create_app

    db = tmp_path / "db"
    with Prefilter(COLLECTION, path=db, encoder=encoder) as pf:
        pf.add_documents(["Cats sleep for most of the day."])
    with TestClient(create_app(encoder=encoder, db=db, collection=COLLECTION, api_key="")) as client:
        assert client.post("/api/search", json={"query": "cats"}).json()["hits"][0]["text"].startswith("Cats")
        assert folder_lock.holders(db) >= 1 and second_process(db).returncode == 3  # held while it serves
    assert folder_lock.holders(db) == 0
    assert second_process(db).returncode == 0
