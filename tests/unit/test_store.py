"""ChunkStore on a real in-memory Chroma with hand-made unit vectors (no model weights are loaded)."""

from __future__ import annotations

import datetime as dt
import uuid

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from shortlist import Encoder
from shortlist.errors import ConfigError, EmbeddingModelMismatchError, InputError, StoreError
from shortlist.store import (
    ChunkRecord,
    ChunkStore,
    chunk_id,
    restore_metadata,
    sanitize_metadata,
)

DIM = 384


@pytest.fixture
def enc() -> Encoder:
    # Only the model's name and dimension are read by the store: the weights are not loaded here.
    return Encoder.shared()


@pytest.fixture
def store(enc: Encoder) -> ChunkStore:
    return ChunkStore.in_memory("unit-store", encoder=enc)


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def records(n: int, source: str = "doc", meta: dict | None = None) -> list[ChunkRecord]:
    return [
        ChunkRecord(source=source, chunk=i, text=f"chunk {i} of {source}", tokens=5, metadata=meta or {})
        for i in range(n)
    ]


# ------------------------------------------------------------------------------------------ ids and metadata
def test_chunk_id_is_stable_and_depends_on_all_three_parts() -> None:
    a = chunk_id("s", 0, "text")
    assert a == chunk_id("s", 0, "text")
    assert len({a, chunk_id("s", 1, "text"), chunk_id("t", 0, "text"), chunk_id("s", 0, "text!")}) == 4
    assert ChunkRecord(source="s", chunk=0, text="text").id == a


@pytest.mark.parametrize(
    "value",
    [None, {"a": 1, "b": [1, 2]}, [], [1, "a"], [None], [{"x": 1}], "plain", 3, 2.5, True, ["a", "b"], [1.5, 2.5]],
)
def test_metadata_round_trip(value: object) -> None:
    stored = sanitize_metadata({"k": value})
    # What goes to Chroma is only what Chroma 1.x accepts.
    v = stored["k"]
    assert isinstance(v, str | int | float | bool) or (isinstance(v, list) and v and len({type(x) for x in v}) == 1)
    assert restore_metadata(stored) == {"k": value}


def test_numpy_and_tuple_values_become_python() -> None:
    stored = sanitize_metadata({"i": np.int64(3), "f": np.float32(0.5), "arr": np.array([1, 2]), "t": (1, 2)})
    assert restore_metadata(stored) == {"i": 3, "f": 0.5, "arr": [1, 2], "t": [1, 2]}


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({"when": dt.date(2024, 1, 1)}, "when"),
        ({"s": {1, 2}}, "'s'"),
        ({"b": b"bytes"}, "'b'"),
        ({"_sl_x": 1}, "reserved"),
        ({"chroma:document": "x"}, "reserved"),
        ({1: "x"}, "non-empty strings"),
        ({"": "x"}, "non-empty strings"),
    ],
)
def test_unsupported_metadata_is_refused_with_the_key_named(meta: dict, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        sanitize_metadata(meta)


# ------------------------------------------------------------------------------------------ writing
def test_upsert_is_idempotent_and_counts_tokens(store: ChunkStore) -> None:
    recs = records(5)
    vecs = unit_vectors(5)
    assert store.upsert(recs, vecs) == 5
    assert store.upsert(recs, vecs) == 5
    assert store.count() == 5
    assert store.corpus_tokens() == 25
    assert store.existing_ids([r.id for r in recs] + ["missing"]) == {r.id for r in recs}


def test_duplicates_inside_one_batch_are_written_once(store: ChunkStore) -> None:
    recs = records(3)
    store.upsert(recs + recs[:2], unit_vectors(5))
    assert store.count() == 3
    assert store.corpus_tokens() == 15


def test_writes_are_split_to_the_client_batch_limit(store: ChunkStore) -> None:
    real_limit = store.max_batch_size
    assert real_limit == store.client.get_max_batch_size() > 0
    store.max_batch_size = 7  # exercise the splitting on a small scale; the real limit is tested in integration
    store.upsert(records(30), unit_vectors(30))
    assert store.count() == 30


def test_wrong_dimension_is_refused_and_nothing_is_written(store: ChunkStore) -> None:
    store.upsert(records(2), unit_vectors(2))
    with pytest.raises(EmbeddingModelMismatchError, match="dimension 128"):
        store.upsert(records(2, "other"), np.ones((2, 128), dtype=np.float32))
    with pytest.raises(InputError, match="shape"):
        store.upsert(records(2, "other"), unit_vectors(3))
    with pytest.raises(InputError, match="NaN"):
        store.upsert(records(1, "other"), np.full((1, DIM), np.nan, dtype=np.float32))
    assert store.count() == 2


def test_bad_metadata_in_a_batch_writes_nothing(store: ChunkStore) -> None:
    good = records(2, "good")
    bad = records(1, "bad", {"when": dt.datetime(2024, 1, 1)})
    with pytest.raises(InputError, match="when"):
        store.upsert(good + bad, unit_vectors(3))
    assert store.count() == 0


def test_reserved_user_keys_are_kept_under_other_names(store: ChunkStore) -> None:
    rec = ChunkRecord(source="id-1", chunk=0, text="x", metadata={"source": "file.txt", "chunk": "user value"})
    store.upsert([rec], unit_vectors(1))
    meta = store.get([rec.id])[0].metadata
    assert meta == {"source": "id-1", "chunk": 0, "original_source": "file.txt", "original_chunk": "user value"}


def test_metadata_comes_back_exactly(store: ChunkStore) -> None:
    meta = {
        "lang": "en",
        "year": 2024,
        "score": 0.5,
        "draft": False,
        "tags": ["a", "b"],
        "none": None,
        "nested": {"a": [1]},
    }
    rec = records(1, meta=meta)[0]
    store.upsert([rec], unit_vectors(1))
    assert store.get([rec.id])[0].metadata == {**meta, "source": "doc", "chunk": 0}


def test_delete_by_source_and_by_id(store: ChunkStore) -> None:
    store.upsert(records(3, "a") + records(2, "b") + records(1, "c"), unit_vectors(6))
    assert store.delete(source="a") == 3
    assert store.count() == 3
    assert store.corpus_tokens() == 15
    assert store.delete(source=["b", "missing"]) == 2
    assert store.delete([records(1, "c")[0].id]) == 1
    assert store.count() == 0
    assert store.delete(source="nothing-there") == 0
    with pytest.raises(InputError, match="needs ids, source or where"):
        store.delete()


# ------------------------------------------------------------------------------------------ reading
def test_query_returns_cosine_similarity_best_first(store: ChunkStore) -> None:
    vecs = unit_vectors(20, seed=3)
    recs = records(20)
    store.upsert(recs, vecs)
    q = vecs[7] * 0.9 + vecs[3] * 0.1
    q = q / np.linalg.norm(q)
    got = store.query(q, 5, include_embeddings=True)
    exact = vecs @ q
    assert got[0].id == recs[7].id
    assert [c.score for c in got] == sorted((c.score for c in got), reverse=True)
    for c in got:
        i = next(j for j, r in enumerate(recs) if r.id == c.id)
        assert c.score == pytest.approx(float(exact[i]), abs=1e-5)
        assert c.embedding is not None and np.allclose(c.embedding, vecs[i], atol=1e-6)


def test_where_filters_are_checked(store: ChunkStore) -> None:
    store.upsert(records(3, "a", {"lang": "en"}) + records(3, "b", {"lang": "fr"}), unit_vectors(6))
    got = store.query(unit_vectors(1, 9)[0], 10, where={"lang": "fr"})
    assert {c.source for c in got} == {"b"}
    with pytest.raises(InputError, match="'colour'.*Known fields: chunk, lang, source"):
        store.query(unit_vectors(1)[0], 3, where={"colour": "red"})
    with pytest.raises(InputError, match="Invalid where"):
        store.query(unit_vectors(1)[0], 3, where={"lang": {"$like": "e"}})
    with pytest.raises(InputError, match="non-empty dict"):
        store.query(unit_vectors(1)[0], 3, where={})


def test_query_vector_of_wrong_dimension(store: ChunkStore) -> None:
    with pytest.raises(EmbeddingModelMismatchError):
        store.query(np.ones(10, dtype=np.float32), 3)


def test_iter_chunks_pages_through_everything(store: ChunkStore) -> None:
    store.upsert(records(25), unit_vectors(25))
    pages = list(store.iter_chunks(page=10))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert len({c.id for p in pages for c in p}) == 25
    assert all(c.text and c.metadata["source"] for p in pages for c in p)
    # Chunks deleted while the pages are read (after the first): left out, no error.
    reading = store.iter_chunks(page=10)
    first = next(reading)
    later = [c.id for p in pages[1:] for c in p][:3]
    store.delete(later)
    rest = [c.id for p in reading for c in p]
    assert len(first) == 10 and len(rest) == 12 and not set(later) & set(rest)


def test_ids_page_through_everything_and_follow_both_filters(store: ChunkStore) -> None:
    recs = records(12, "a", {"lang": "en"}) + records(13, "b", {"lang": "de"})
    store.upsert(recs, unit_vectors(25))
    pages = list(store.iter_ids(page=10))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert store.ids() == [i for p in pages for i in p]
    assert sorted(store.ids(page=7)) == sorted(r.id for r in recs)
    assert sorted(store.ids(where={"lang": "de"}, page=4)) == sorted(r.id for r in recs if r.source == "b")
    assert store.ids(where_document={"$contains": "chunk 3 of a"}) == [recs[3].id]
    assert store.ids(where={"lang": "de"}, where_document={"$contains": "chunk 3 of a"}) == []
    assert list(ChunkStore.in_memory("empty-ids", encoder=store.encoder).iter_ids()) == []
    with pytest.raises(InputError, match="Invalid request"):
        store.ids(where={"lang": {"$nope": 1}})


def test_list_and_drop_collections_without_creating_a_database(enc: Encoder, tmp_path) -> None:
    db = tmp_path / "db"
    assert ChunkStore.list_collections(path=db) == {}
    assert ChunkStore.drop_collection("abc", path=db) is False
    assert not db.exists()  # reading an absent database does not create one
    ChunkStore("second", path=db, encoder=enc).upsert(records(3), unit_vectors(3))
    ChunkStore("first", path=db, encoder=enc)
    assert ChunkStore.list_collections(path=db) == {"first": 0, "second": 3}
    assert ChunkStore.drop_collection("second", path=db) is True
    assert ChunkStore.drop_collection("second", path=db) is False
    assert ChunkStore.list_collections(path=db) == {"first": 0}
    with pytest.raises(ConfigError, match="only one"):
        ChunkStore.list_collections(path=db, host="127.0.0.1")


def test_opening_a_store_preloads_its_vector_index_and_close_waits_for_it(enc: Encoder, tmp_path) -> None:
    db = tmp_path / "db"
    with ChunkStore("warm", path=db, encoder=enc) as first:
        first.upsert(records(20), unit_vectors(20))
    store = ChunkStore("warm", path=db, encoder=enc)
    preload = store._preloading
    assert preload.name == "shortlist-preload-warm" and preload.ident is not None  # started at open
    hits = store.query(unit_vectors(1, seed=3)[0], 3)
    assert len(hits) == 3  # the real query is unaffected by the preload's
    store.close()
    assert not preload.is_alive()
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_open_client_is_the_one_factory(tmp_path) -> None:
    from shortlist.store import open_client

    client = open_client(tmp_path / "made")
    assert (tmp_path / "made").is_dir()
    assert client.list_collections() == []
    with pytest.raises(ConfigError, match="'port' needs 'host'"):
        open_client(port=8000)
    with pytest.raises(ConfigError, match="only one"):
        open_client(tmp_path, host="127.0.0.1")


# ------------------------------------------------------------------------------------------ opening
def test_in_memory_stores_are_private(enc: Encoder) -> None:
    a = ChunkStore.in_memory("same-name", encoder=enc)
    b = ChunkStore.in_memory("same-name", encoder=enc)
    a.upsert(records(2), unit_vectors(2))
    assert (a.count(), b.count()) == (2, 0)


def test_collection_records_the_model(store: ChunkStore) -> None:
    meta = store.collection.metadata
    assert meta["shortlist:model"] == store.model_name
    assert meta["shortlist:dimension"] == DIM
    assert meta["shortlist:normalized"] is True


class _OtherModel:
    """Stands in for an encoder of another model: the store reads only these two facts."""

    model_name = "someone/other-model"
    dimension = DIM


def test_another_models_collection_is_refused(enc: Encoder) -> None:
    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    name = f"mine-{uuid.uuid4().hex[:8]}"
    mine = ChunkStore(name, client=client, encoder=enc)
    mine.upsert(records(2), unit_vectors(2))
    with pytest.raises(EmbeddingModelMismatchError, match="someone/other-model"):
        ChunkStore(name, client=client, encoder=_OtherModel())  # type: ignore[arg-type]
    assert mine.count() == 2


def test_foreign_collections_are_refused_when_not_empty(enc: Encoder) -> None:
    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    name = f"foreign-{uuid.uuid4().hex[:8]}"
    col = client.create_collection(name, embedding_function=None)
    col.add(ids=["x"], embeddings=[[0.1] * DIM], documents=["x"])
    with pytest.raises(EmbeddingModelMismatchError, match="not created by shortlist"):
        ChunkStore(name, client=client, encoder=enc)
    l2 = f"l2-{uuid.uuid4().hex[:8]}"
    client.create_collection(
        l2,
        configuration={"hnsw": {"space": "l2"}},
        metadata={"shortlist:model": enc.model_name, "shortlist:dimension": DIM},
    )
    with pytest.raises(EmbeddingModelMismatchError, match="'l2' space"):
        ChunkStore(l2, client=client, encoder=enc)


def test_conflicting_locations(enc: Encoder, tmp_path) -> None:
    with pytest.raises(ConfigError, match="only one"):
        ChunkStore("abc", path=tmp_path, host="127.0.0.1", encoder=enc)
    with pytest.raises(ConfigError, match="'port' needs 'host'"):
        ChunkStore("abc", port=8000, encoder=enc)


def test_bad_collection_name(enc: Encoder, tmp_path) -> None:
    with pytest.raises(ConfigError, match="name"):
        ChunkStore("x", path=tmp_path, encoder=enc)


def test_default_path_is_under_shortlist_home(enc: Encoder, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SHORTLIST_HOME", str(tmp_path))
    store = ChunkStore("default-path", encoder=enc)
    assert store.path == tmp_path / "chroma"
    assert (tmp_path / "chroma").is_dir()


def test_import_shortlist_does_not_import_chromadb() -> None:
    import subprocess
    import sys

    code = (
        "import sys, shortlist\n"
        "assert 'chromadb' not in sys.modules and 'shortlist.store' not in sys.modules\n"
        "from shortlist import ChunkStore, Prefilter\n"
        "assert ChunkStore.__module__ == 'shortlist.store' and Prefilter.__module__ == 'shortlist.prefilter'\n"
        "assert 'chromadb' not in sys.modules  # loaded when a store is opened\n"
        "assert {'ChunkStore', 'Prefilter'} <= set(shortlist.__all__) <= set(dir(shortlist))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_package_keeps_every_name_of_the_old_module() -> None:
    import shortlist.store as store

    old_names = (
        "ChunkRecord ChunkStore StoredChunk chunk_id sanitize_metadata restore_metadata RESERVED_KEYS INTERNAL_KEYS "
        "KEY_SOURCE KEY_CHUNK KEY_TITLE KEY_TOKENS KEY_JSON META_MODEL META_DIMENSION META_NORMALIZED META_FIELDS "
        "META_VERSION STORE_VERSION DEFAULT_COLLECTION"
    ).split()
    missing = [name for name in old_names if not hasattr(store, name)]
    assert not missing
    assert set(store.__all__) >= {"ChunkRecord", "ChunkStore", "StoredChunk", "chunk_id", "sanitize_metadata"}
    assert (store.KEY_TITLE, store.DEFAULT_COLLECTION, store.META_MODEL) == ("title", "shortlist", "shortlist:model")


def test_a_read_that_raced_a_delete_is_asked_once_more(store: ChunkStore) -> None:
    calls: list[int] = []

    def read(**kw: object) -> dict[str, list[str]]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Error executing plan: Internal error: Error finding id")
        return {"ids": ["a"]}

    assert store._ask(read, "Invalid", "read") == {"ids": ["a"]} and len(calls) == 2

    def broken(**kw: object) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(StoreError, match="disk on fire"):
        store._ask(broken, "Invalid", "read")
