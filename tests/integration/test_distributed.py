"""shortlist.distributed on a real local Ray instance (2 CPUs, no dashboard, loopback) and a real ``chroma run``.

One small corpus (a BEIR folder and Markdown files, 50 chunks) is indexed once by the single-process
``shortlist index`` and then on Ray; the distributed collection must hold the same chunk ids, texts, metadata and
vectors. A second distributed run embeds nothing; a run whose actor is SIGKILLed mid-run ends with every chunk
stored once. Ray itself is the one from the ``distributed`` extra, started once for the module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from shortlist import Encoder
from shortlist.cli import cli
from shortlist.corpus import docstring_documents
from shortlist.distributed import DistributedReport, index
from shortlist.distributed.runner import import_ray
from shortlist.errors import EmptyCollectionWarning
from shortlist.store import ChunkStore

pytestmark = pytest.mark.server

MODULES = ["bisect", "fnmatch", "heapq", "base64"]
DOCUMENTS = 40  # their documents: 30 in the BEIR folder, 10 Markdown files; 50 chunks


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder (corpus.jsonl with titles, queries.jsonl) and Markdown notes: 40 documents, 50 chunks."""
    root = tmp_path_factory.mktemp("corpus")
    docs = docstring_documents(MODULES)
    assert len(docs) == DOCUMENTS
    beir = root / "beir"
    beir.mkdir()
    with (beir / "corpus.jsonl").open("w") as handle:
        for d in docs[:30]:
            line = {"_id": d.id, "title": d.metadata["title"], "text": d.text, "kind": d.metadata["kind"]}
            handle.write(json.dumps(line) + "\n")
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "parse json"}) + "\n")
    notes = root / "notes"
    notes.mkdir()
    for i, d in enumerate(docs[30:]):
        (notes / f"note-{i:02d}.md").write_text(d.text)
    return root


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A local Ray instance for the module: 2 CPUs, no dashboard, bound to 127.0.0.1 (see import_ray)."""
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _rows(host: str, port: int, name: str, encoder: Encoder) -> dict[str, tuple[str, dict[str, Any], np.ndarray]]:
    store = ChunkStore(name, host=host, port=port, encoder=encoder)
    out = {}
    for page in store.iter_chunks(include_text=True, include_embeddings=True):
        for c in page:
            assert c.embedding is not None
            out[c.id] = (c.text, dict(c.metadata), c.embedding)
    return out


@pytest.fixture(scope="module")
def single(
    corpus: Path, chroma_server: tuple[str, int], encoder: Encoder
) -> dict[str, tuple[str, dict[str, Any], np.ndarray]]:
    """The corpus indexed by the single-process `shortlist index` into collection ``single-process``."""
    host, port = chroma_server
    url = f"http://{host}:{port}"
    args = ["index", str(corpus), "--chroma-url", url, "-c", "single-process", "--backend", "onnx", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return _rows(host, port, "single-process", encoder)


def test_same_chunks_as_shortlist_index_and_a_rerun_embeds_nothing(
    corpus: Path,
    chroma_server: tuple[str, int],
    encoder: Encoder,
    ray_local: Any,
    single: dict[str, tuple[str, dict[str, Any], np.ndarray]],
) -> None:
    host, port = chroma_server
    url = f"http://{host}:{port}"
    args = ["index", str(corpus), "--chroma-url", url, "-c", "on-ray", "--backend", "onnx", "--json"]
    result = CliRunner().invoke(cli, [*args, "--actors", "2", "--batch-size", "8", "--ray"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["documents"] == DOCUMENTS
    assert summary["added"] == summary["chunks"] == len(single) == summary["total_chunks"]
    assert sum(w["chunks"] for w in summary["workers"]) == len(single)

    dist = _rows(host, port, "on-ray", encoder)
    assert set(dist) == set(single)
    for cid, (text, meta, vec) in single.items():
        assert dist[cid][0] == text
        assert dist[cid][1] == meta
        assert float(np.dot(dist[cid][2], vec)) >= 0.9999, cid

    again = index([corpus], collection="on-ray", host=host, port=port, actors=2, batch_size=8, backend="onnx")
    assert (again.added, again.skipped, again.chunks) == (0, len(single), len(single))
    assert again.embed_s == 0.0 and again.total_chunks == len(single)
    # Ray Data's progress bars replace builtins.print unless told not to; the process is left as it was.
    import builtins

    assert builtins.print.__module__ == "builtins" and builtins.print.__doc__


def _ray_processes() -> dict[int, str]:
    import psutil

    found = {}
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] in ("raylet", "gcs_server") or cmdline.startswith("ray::") or "/ray/" in cmdline:
            found[int(proc.info["pid"])] = proc.info["name"]
    return found


def test_a_local_instance_listens_on_loopback_only(ray_local: Any) -> None:
    import psutil

    ray_local.get(ray_local.remote(lambda: 1).remote())  # a worker process up too
    pids = {**_ray_processes(), os.getpid(): "driver"}
    listening = [
        (pids[c.pid], c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert any(name in ("raylet", "gcs_server") for name, _, _ in listening), listening
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for _, ip, _ in listening), listening


def _actor_pids() -> list[int]:
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "IndexWorker" in cmdline:
            pids.append(int(proc.info["pid"]))
    return pids


@pytest.fixture(scope="module")
def three_copies(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BEIR folder three times under other document ids (~115 chunks): a run long enough to kill an actor in,
    on a fast machine too."""
    root = tmp_path_factory.mktemp("three-copies")
    for copy in "abc":
        folder = root / copy
        folder.mkdir()
        with (corpus / "beir" / "corpus.jsonl").open() as src, (folder / "corpus.jsonl").open("w") as dst:
            for line in src:
                row = json.loads(line)
                dst.write(json.dumps({**row, "_id": f"{copy}:{row['_id']}"}) + "\n")
        (folder / "queries.jsonl").write_text((corpus / "beir" / "queries.jsonl").read_text())
    return root


def _expected_ids(paths: list[Path], encoder: Encoder) -> set[str]:
    """The chunk ids shortlist index gives these files (its reader, coercion and chunker; no embedding)."""
    from shortlist.ingest.chunking import chunk_document
    from shortlist.ingest.coerce import coerce_documents
    from shortlist.loaders import load_files

    docs = coerce_documents([d.as_dict() for d in load_files(paths).documents])
    return {
        r.id
        for d in docs
        for r in chunk_document(d, tokenizer=encoder.tokenizer, chunk_tokens=128, chunk_overlap=16, title_key="title")
    }


def test_an_actor_killed_mid_run_leaves_no_duplicate_and_nothing_missing(
    three_copies: Path, chroma_server: tuple[str, int], encoder: Encoder, ray_local: Any
) -> None:
    host, port = chroma_server
    expected = _expected_ids([three_copies], encoder)
    first_batch = threading.Event()
    reports: list[DistributedReport] = []
    errors: list[BaseException] = []

    def progress(report: DistributedReport) -> None:
        reports.append(report)
        first_batch.set()

    def run() -> None:
        try:
            index([three_copies], collection="killed", host=host, port=port, actors=2, batch_size=2, progress=progress)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert first_batch.wait(180), "no batch finished"
    before = _actor_pids()
    assert before, "no IndexWorker actor process found"
    os.kill(before[0], signal.SIGKILL)
    thread.join(300)
    assert not thread.is_alive() and not errors, errors

    final = reports[-1]
    assert final.documents == 3 * 30  # every batch counted once: a retried batch reports its successful attempt only
    assert final.chunks == len(expected)
    # Ray restarted the killed actor (a new process) and ran its batches there.
    assert {int(w.worker.rsplit(":", 1)[1]) for w in final.workers} - set(before)
    stored = _rows(host, port, "killed", encoder)
    assert set(stored) == expected  # nothing missing, nothing extra (Chroma ids are unique: no duplicate)
    assert ChunkStore("killed", host=host, port=port, encoder=encoder).count() == len(expected)


def test_ray_needs_a_server_and_the_extra(corpus: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(corpus), "--db", str(tmp_path / "db"), "--ray"])
    assert result.exit_code == 2 and "--ray writes to a Chroma server" in result.output
    result = runner.invoke(cli, ["index", str(corpus), "--actors", "2", "--db", str(tmp_path / "db")])
    assert result.exit_code == 2 and "--actors goes with --ray" in result.output
    # Without Ray installed (a `ray` that fails to import, first on the path): one line naming the extra.
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    command = [sys.executable, "-m", "shortlist", "index", str(corpus), "--chroma-url", "http://127.0.0.1:9", "--ray"]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'shortlist[distributed]'" in lines[0], proc.stderr
    assert time.monotonic() - started < 120


def test_a_ray_dataset_of_documents(chroma_server: tuple[str, int], encoder: Encoder, ray_local: Any) -> None:
    """Rows as add_documents takes dicts (``text``, ``id``, ``metadata``): the same chunks as add_documents."""
    from shortlist.prefilter import Prefilter

    host, port = chroma_server
    docs = [
        {"id": f"d{i}", "text": f"Note {i}: the pump needs {i} litres of water.", "metadata": {"lang": "en", "n": i}}
        for i in range(6)
    ]
    docs[2]["metadata"] = {"lang": "fr"}  # another set of keys: Arrow fills the others with None, dropped
    watcher = Prefilter("from-dataset", host=host, port=port, encoder=encoder)  # attached before the ingest
    with pytest.warns(EmptyCollectionWarning):  # its keyword side is open, on an empty collection
        assert watcher.search("pump litres", k=3, mode="keyword").hits == ()
    report = index(ray_local.data.from_items(docs), collection="from-dataset", host=host, port=port, actors=1)
    assert (report.documents, report.added, report.files) == (6, 6, None)
    # The actors wrote through ChunkStore.upsert and its journal: a pre-filter already open sees the chunks.
    deadline = time.monotonic() + 10
    while len(watcher.search("pump litres", k=6, mode="keyword").hits) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(watcher.search("pump litres", k=6, mode="keyword").hits) == 6
    watcher.close()
    Prefilter("by-hand", host=host, port=port, encoder=encoder).add_documents(docs)
    by_hand = {k: (t, m) for k, (t, m, _) in _rows(host, port, "by-hand", encoder).items()}
    assert {k: (t, m) for k, (t, m, _) in _rows(host, port, "from-dataset", encoder).items()} == by_hand
