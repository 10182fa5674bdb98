"""The same store and pre-filter code against a real `chroma run` server on 127.0.0.1, started and stopped here."""

from __future__ import annotations

from pydoc_data.topics import topics

import numpy as np
import pytest

from shortlist import ChunkStore, Encoder, Prefilter
from shortlist.errors import EmbeddingModelMismatchError, InputError, StoreError
from shortlist.store import ChunkRecord
from tests.conftest import ChromaRun, free_port

pytestmark = pytest.mark.server


def test_store_on_a_server(chroma_server: tuple[str, int], encoder: Encoder) -> None:
    host, port = chroma_server
    store = ChunkStore("server-store", host=host, port=port, encoder=encoder)
    assert store.kind == "server" and store.max_batch_size == store.client.get_max_batch_size() > 0
    recs = [
        ChunkRecord(source="d", chunk=i, text=f"text {i}", tokens=2, metadata={"n": None, "i": i}) for i in range(5)
    ]
    vecs = encoder.embed_documents([r.text for r in recs])
    assert store.upsert(recs + recs[:1], np.vstack([vecs, vecs[:1]])) == 5
    store.upsert(recs, vecs)
    assert store.count() == 5 and store.corpus_tokens() == 10
    got = store.query(vecs[2], 1)
    assert got[0].id == recs[2].id and got[0].score == pytest.approx(1.0, abs=1e-4)
    assert got[0].metadata == {"n": None, "i": 2, "source": "d", "chunk": 2}
    with pytest.raises(EmbeddingModelMismatchError):
        store.upsert(recs[:1], np.ones((1, 8), dtype=np.float32))
    with pytest.raises(InputError, match="Known fields"):
        store.query(vecs[0], 2, where={"nope": 1})
    assert store.delete(source="d") == 5 and store.count() == 0


def test_prefilter_on_a_server_matches_the_embedded_one(chroma_server: tuple[str, int], encoder: Encoder) -> None:
    host, port = chroma_server
    docs = [{"id": n, "text": topics[n], "metadata": {"topic": n}} for n in ("try", "while", "for", "with", "yield")]
    remote = Prefilter("server-prefilter", host=host, port=port, encoder=encoder)
    local = Prefilter.in_memory("local-twin", encoder=encoder)
    first = remote.add_documents(docs)
    local.add_documents(docs)
    assert remote.add_documents(docs).added == 0 and first.added == remote.count() == local.count()
    for mode in ("dense", "keyword", "hybrid"):
        r = remote.search("How do I catch an exception?", k=4, mode=mode)
        loc = local.search("How do I catch an exception?", k=4, mode=mode)
        assert [h.id for h in r] == [h.id for h in loc]
        assert [h.score for h in r] == pytest.approx([h.score for h in loc], abs=1e-4)
    # A second client (another process would do the same) sees the data; its keyword index is built from it.
    again = Prefilter("server-prefilter", host=host, port=port, encoder=encoder)
    assert again.count() == remote.count()
    assert again.search("while", k=1, mode="keyword")[0].metadata["topic"] == "while"
    assert again.delete("yield") > 0
    assert all(h.metadata["topic"] != "yield" for h in remote.search("yield expression generator", k=10, mode="hybrid"))


def test_server_down_is_a_clear_error(encoder: Encoder) -> None:
    with pytest.raises(StoreError, match="Could not"):
        ChunkStore("nobody-home", host="127.0.0.1", port=free_port(), encoder=encoder)


def test_collections_and_ids_on_a_server(chroma_server: tuple[str, int], encoder: Encoder) -> None:
    host, port = chroma_server
    store = ChunkStore("server-listed", host=host, port=port, encoder=encoder)
    recs = [ChunkRecord(source=f"d{i % 2}", chunk=i, text=f"listed text {i}", tokens=3) for i in range(6)]
    store.upsert(recs, encoder.embed_documents([r.text for r in recs]))
    assert ChunkStore.list_collections(host=host, port=port)["server-listed"] == 6
    assert sorted(store.ids(page=4)) == sorted(r.id for r in recs)
    assert sorted(store.ids(where={"source": "d1"})) == sorted(r.id for r in recs if r.source == "d1")
    assert ChunkStore.drop_collection("server-listed", host=host, port=port) is True
    assert "server-listed" not in ChunkStore.list_collections(host=host, port=port)
    assert ChunkStore.drop_collection("server-listed", host=host, port=port) is False
    with pytest.raises(StoreError, match="Could not"):
        ChunkStore.list_collections(host="127.0.0.1", port=free_port())


def test_writes_to_a_stopped_server_fail_naming_it_and_lose_nothing(chroma_run: ChromaRun, encoder: Encoder) -> None:
    store = ChunkStore("server-writes", host=chroma_run.host, port=chroma_run.port, encoder=encoder)
    recs = [ChunkRecord(source="w", chunk=i, text=f"write test {i}", tokens=3) for i in range(3)]
    vecs = encoder.embed_documents([r.text for r in recs])
    store.upsert(recs[:2], vecs[:2])
    chroma_run.stop()
    where = f"{chroma_run.host}:{chroma_run.port}"
    with pytest.raises(StoreError, match=where):
        store.upsert(recs[2:], vecs[2:])
    with pytest.raises(StoreError, match=where):
        store.delete(source="w")
    chroma_run.start()
    assert sorted(store.ids()) == sorted(r.id for r in recs[:2])  # the refused writes changed nothing
    assert store.upsert(recs[2:], vecs[2:]) == 1 and store.count() == 3
