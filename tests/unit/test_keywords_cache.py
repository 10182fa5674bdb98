"""The keyword side following the store: the change journal and KeywordCache over a real embedded Chroma (no model:
the store only reads the encoder's name and dimension; vectors are random unit vectors).

The same behaviour across real processes and a real `chroma run` is in tests/integration/test_live_hybrid.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shortlist import Encoder
from shortlist.keywords import Calibration
from shortlist.keywords import cache as cache_module
from shortlist.keywords.cache import MATERIAL_CHANGE, KeywordCache, keyword_folder
from shortlist.keywords.segments import LiveKeywordIndex
from shortlist.store import ChunkRecord, ChunkStore
from shortlist.store.journal import DONE, INTENT, Journal, is_journal_name, journal_name, key_time


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _records(texts: dict[str, str]) -> list[ChunkRecord]:
    return [ChunkRecord(source=src, chunk=0, text=text, tokens=len(text.split())) for src, text in texts.items()]


def _write(store: ChunkStore, texts: dict[str, str]) -> list[ChunkRecord]:
    recs = _records(texts)
    store.upsert(recs, _vectors(len(recs), seed=len(store.ids())))
    return recs


def _plain_add(store: ChunkStore, id_: str, text: str, seed: int) -> None:
    """A plain chromadb client's add: no journal entry, no listener."""
    store.collection.add(ids=[id_], embeddings=_vectors(1, seed), documents=[text], metadatas=[{"x": 1}])


def _found(cache: KeywordCache, query: str, n: int = 10) -> set[str]:
    return {i for i, _ in cache.search(query, n)}


BASE = {"a": "cats purr softly", "b": "dogs bark loudly", "c": "birds sing at dawn"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChunkStore]:
    s = ChunkStore("col", path=tmp_path / "db", encoder=Encoder.shared())
    yield s
    s.close()


def test_journal_entries_are_ordered_and_hidden(tmp_path: Path, store: ChunkStore) -> None:
    journal = store.journal
    assert journal is not None and journal.name == journal_name("col") and is_journal_name(journal.name)
    recs = _write(store, BASE)
    entries = journal.since(0)
    assert [e.kind for e in entries] == [INTENT, DONE]
    assert set(entries[0].ids) == {r.id for r in recs} and entries[1].done == (entries[0].key,)
    assert entries[0].key < entries[1].key and key_time(entries[0].key) == entries[0].t
    store.delete(source="a")
    assert [e.kind for e in journal.since(0)] == [INTENT, DONE, INTENT, DONE]
    assert journal.since(int(time.time() * 1000) + 60_000) == []
    assert journal.get([entries[0].key])[0].ids == entries[0].ids
    # The journal is not a collection of chunks: listings skip it, dropping the collection drops it too.
    assert ChunkStore.list_collections(path=tmp_path / "db") == {"col": 2}
    assert ChunkStore.drop_collection("col", path=tmp_path / "db") is True
    names = [c.name for c in store.client.list_collections()]
    assert journal.name not in names and "col" not in names
    assert Journal(store.client, "x" * 505).name.endswith(".shortlist-journal")  # a long name stays valid


def test_the_journals_chroma_log_is_flushed_as_it_grows(tmp_path: Path, store: ChunkStore) -> None:
    """Chroma keeps a collection's writes in its log (its SQLite ``embeddings_queue``) until the vector index is
    flushed, and each write costs in proportion to that log: the journal flushes every 10 entries."""
    import sqlite3

    journal = store.journal
    assert journal is not None
    for i in range(30):
        journal.done(journal.intend([f"id-{i}"]))
    topic = f"%{journal._col.id}"
    with sqlite3.connect(tmp_path / "db" / "chroma.sqlite3") as db:
        waiting = db.execute("SELECT count(*) FROM embeddings_queue WHERE topic LIKE ?", (topic,)).fetchone()[0]
    assert len(journal.since(0)) == 60 and waiting <= 10  # with Chroma's default (1,000) all 60 would wait


def test_own_writes_are_seen_at_once_and_the_copy_reopens_without_a_rebuild(
    tmp_path: Path, store: ChunkStore, caplog: pytest.LogCaptureFixture
) -> None:
    _write(store, BASE)
    cache = KeywordCache(store)
    assert _found(cache, "barking dogs") == {store.ids_of_sources(["b"]).pop()}
    folder = cache.folder
    assert folder == keyword_folder(store) == tmp_path / "db" / "shortlist-keyword" / f"col-{store.collection_id}"
    _write(store, {"d": "fish swim while dogs watch"})  # applied before upsert returns
    assert len(_found(cache, "dogs")) == 2
    store.delete(source="b")
    assert len(_found(cache, "dogs")) == 1 and len(cache.index()) == 3
    assert cache.corpus_tokens() == store.corpus_tokens() == 3 + 4 + 5  # the copy keeps the store's token tally
    cache.close()
    # Written while no cache was open: a new one opens the folder and catches up from the journal.
    _write(store, {"e": "owls hunt at night"})
    store.delete(source="a")
    with caplog.at_level(logging.INFO, logger="shortlist.keywords.cache"):
        again = KeywordCache(store)
        assert _found(again, "owls") and not _found(again, "cats purr")
    assert not any("Built the keyword index" in r.message for r in caplog.records)
    assert sorted(again.index().ids()) == sorted(store.ids())
    assert any("(2 changed since, applied)" in r.message for r in caplog.records)  # "e" added, "a" deleted
    again.close()
    # Opened again at once: the journal's last seconds are read again (writers' clocks may differ) but what was
    # applied there is recorded with the position, so nothing is applied twice.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shortlist.keywords.cache"):
        third = KeywordCache(store)
        assert _found(third, "owls")
    assert any("(0 changed since, applied)" in r.message for r in caplog.records)
    third.close()


def test_plain_client_writes_are_caught_by_refresh(store: ChunkStore) -> None:
    recs = _write(store, BASE)
    cache = KeywordCache(store)
    assert _found(cache, "cats")
    # A plain chromadb client adds one chunk and rewrites another's text under the same id: no journal entry.
    _plain_add(store, "plain", "zebras graze", seed=9)
    store.collection.update(ids=[recs[0].id], documents=["lions roar"], embeddings=_vectors(1, 8))
    assert not _found(cache, "zebras") and _found(cache, "cats")
    cache.refresh()
    assert _found(cache, "zebras") == {"plain"} and _found(cache, "lions") == {recs[0].id}
    assert not _found(cache, "cats")
    cache.close()


def test_an_intent_without_its_done_is_applied_after_the_pending_time(
    store: ChunkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(store, BASE)
    cache = KeywordCache(store)
    cache.index()
    monkeypatch.setattr(cache_module, "PENDING_SECONDS", 0.3)
    # A writer that died after its write reached Chroma but before its done entry: only the intent is there.
    journal = Journal(store.client, "col")
    journal.intend(["ghost"])
    _plain_add(store, "ghost", "ghost story", seed=5)
    cache.catch_up()
    assert not _found(cache, "ghost")  # waiting for the done
    time.sleep(0.35)
    cache.catch_up()
    assert _found(cache, "ghost") == {"ghost"}
    # Another writer's complete batch is applied at once.
    other = ChunkStore("col", client=store.client, encoder=Encoder.shared())
    _plain_add(other, "late", "late owl", seed=6)
    assert other.journal is not None
    other.journal.done(other.journal.intend(["late"]))
    cache.catch_up()
    assert _found(cache, "owl") == {"late"}
    cache.close()


def test_a_second_cache_on_the_folder_follows_and_takes_over(store: ChunkStore) -> None:
    _write(store, BASE)
    first = KeywordCache(store)
    first.index()
    second = KeywordCache(store)  # the folder's writer is taken: it reads what the first commits
    second.index()
    assert first.is_applier and not second.is_applier
    _write(store, {"d": "ferrets tunnel"})
    assert _found(first, "ferrets") and not _found(second, "ferrets")
    second._tick()  # what its thread does every poll
    assert _found(second, "ferrets")
    first.close()
    second._tick()  # the applier is gone: it takes the writer over
    assert second.is_applier
    _write(store, {"e": "moles dig"})
    assert _found(second, "moles")
    second.close()


def test_shared_gives_one_cache_per_folder_in_a_process(store: ChunkStore, tmp_path: Path) -> None:
    twin = ChunkStore("col", path=tmp_path / "db", encoder=Encoder.shared())
    a, b = KeywordCache.shared(store), KeywordCache.shared(twin)
    assert a is b
    a.index()
    _write(twin, {"x": "pelicans dive"})  # a write through the other store is heard too
    assert _found(a, "pelicans")
    a.close()
    assert not a._stop.is_set()  # one user left
    b.close()
    assert a._stop.is_set() and KeywordCache.shared(store) is not a
    twin.close()


def test_calibration_is_kept_until_the_collection_changed_materially(store: ChunkStore) -> None:
    texts = {f"s{i}": f"sentence number {i} about topic{i}" for i in range(40)}
    _write(store, texts)
    cache = KeywordCache(store)
    computed: list[int] = []

    def compute(index: LiveKeywordIndex) -> Calibration:
        computed.append(len(index))
        return Calibration(weights={"latin": (0.41, 0.42, 0.43)[len(computed) - 1]})

    # A query never computes it: the priors, and one computed in the background.
    assert cache.current_calibration(compute) == Calibration()
    assert cache.wait_calibrated() and computed == [40]
    first = cache.current_calibration(compute)
    assert first.weights == {"latin": 0.41}
    few = int(MATERIAL_CHANGE * 40) - 1
    _write(store, {f"n{i}": f"new sentence {i}" for i in range(few)})
    cache.after_ingest(compute)
    assert cache.calibration(compute) is first and computed == [40]  # under 10%: kept
    _write(store, {"m0": "one more", "m1": "and another"})
    cache.after_ingest(compute)  # now 10% or more since it was computed: recomputed by the ingest
    assert computed == [40, 40 + few + 2] and cache.calibration(compute).weights == {"latin": 0.42}
    folder = cache.folder
    cache.close()
    assert folder is not None and Calibration.load(folder) == Calibration(weights={"latin": 0.42})
    again = KeywordCache(store)
    assert again.calibration(compute).weights == {"latin": 0.42} and len(computed) == 2  # reloaded
    again.close()


def test_an_incompatible_folder_is_rebuilt(store: ChunkStore) -> None:
    _write(store, BASE)
    cache = KeywordCache(store)
    folder = cache.folder
    assert folder is not None
    cache.index()
    cache.close()
    (folder / "shortlist-segments.json").write_text('{"format": "segments-0/old"}')
    again = KeywordCache(store)
    assert _found(again, "cats") and LiveKeywordIndex.is_compatible(folder)
    again.close()


def test_a_cache_opening_after_a_writer_died_applies_its_last_intent_at_once(store: ChunkStore) -> None:
    _write(store, BASE)
    first = KeywordCache(store)
    first.index()
    first.close()
    # The writer died in its write: the intent is in the journal, the chunk reached Chroma, no done followed.
    journal = Journal(store.client, "col")
    journal.intend(["orphan"])
    _plain_add(store, "orphan", "orphan gannet", seed=7)
    again = KeywordCache(store)  # opening (or taking over a dead applier's copy) applies it without waiting
    assert _found(again, "gannet") == {"orphan"}
    again.close()


def test_only_the_applier_recalibrates_after_an_ingest(store: ChunkStore) -> None:
    _write(store, BASE)
    applier, follower = KeywordCache(store), KeywordCache(store)
    applier.index()
    follower.index()
    assert applier.is_applier and not follower.is_applier
    computed: list[str] = []

    def compute(index: LiveKeywordIndex) -> Calibration:
        computed.append("x")
        return Calibration(weights={"latin": 0.5})

    follower.after_ingest(compute)  # it could not save the result: the applier's job
    assert computed == []
    applier.after_ingest(compute)
    assert computed == ["x"]
    follower.close()
    applier.close()


def test_a_relative_folder_keeps_its_keyword_copy_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rel = ChunkStore("col", path="relative-db", encoder=Encoder.shared())
    assert rel.path == tmp_path / "relative-db"
    _write(rel, BASE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the copy is opened after the working directory changed
    cache = KeywordCache(rel)
    assert _found(cache, "cats")
    assert cache.folder is not None and cache.folder.parent == tmp_path / "relative-db" / "shortlist-keyword"
    assert not (elsewhere / "relative-db").exists()
    cache.close()
    rel.close()


class _Counting:
    """The real encoder, counting its embedding calls (what a background calibration's steps are)."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return self.encoder.embed_documents(texts)


def test_closing_stops_a_background_calibration_at_its_next_step(store: ChunkStore) -> None:
    import threading

    _write(store, BASE)
    cache = KeywordCache(store)
    encoder = _Counting(Encoder.shared())
    texts = [f"sentence number {i} about cats and dogs" for i in range(400)]
    started, ended = threading.Event(), threading.Event()
    outcome: list[object] = []

    def compute(index: LiveKeywordIndex) -> Calibration:
        guarded = index.guard(encoder)  # type: ignore[attr-defined]
        small = guarded.embed_documents(texts[:20])  # sliced, the same vectors as one call
        np.testing.assert_allclose(small, Encoder.shared().embed_documents(texts[:20]), atol=1e-5)
        started.set()
        try:
            guarded.embed_documents(texts)
            outcome.append("finished")
        except Exception as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            ended.set()
        return Calibration(weights={"latin": 0.5})

    assert cache.current_calibration(compute).weights == {}  # the priors; one is computed in the background
    assert started.wait(60)
    calls_before = encoder.calls
    cache.close()
    assert ended.wait(60)
    assert outcome == ["_Cancelled"]
    assert encoder.calls - calls_before < len(texts) // cache_module._GUARD_SLICE  # stopped between slices


def test_an_embedded_folder_compares_the_ids_once_then_the_counts(
    store: ChunkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = _write(store, BASE)
    cache = KeywordCache(store)
    cache.index()
    monkeypatch.setattr(cache_module, "IDS_RECONCILE_SECONDS", 0.0)
    # A plain chromadb client replaces a chunk by another (the count stays): the first ids check catches it.
    store.collection.delete(ids=[recs[0].id])
    _plain_add(store, "plain-1", "zebras graze", seed=9)
    cache._tick()
    assert _found(cache, "zebras") and not _found(cache, "cats purr")
    # Later same-count replacements wait for refresh_keyword_index() (only this process writes an embedded folder);
    # a count change is still caught by the count check.
    store.collection.delete(ids=[recs[1].id])
    _plain_add(store, "plain-2", "otters float", seed=7)
    cache._tick()
    assert not _found(cache, "otters")
    monkeypatch.setattr(cache_module, "RECONCILE_SECONDS", 0.0)
    _plain_add(store, "plain-3", "moles dig", seed=6)
    cache._tick()
    assert _found(cache, "moles") and _found(cache, "otters")  # the count moved: the ids were compared
    cache.close()


def test_this_processs_writes_go_on_while_the_background_check_lists_the_ids(
    store: ChunkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(store, BASE)
    cache = KeywordCache(store)
    cache.index()
    listing, release = threading.Event(), threading.Event()
    real_ids = store.ids

    def held_ids(**kw: object) -> list[str]:  # the real listing, held open until the write below is done
        out = real_ids(**kw)  # type: ignore[arg-type]
        listing.set()
        assert release.wait(60)
        return out

    monkeypatch.setattr(store, "ids", held_ids)
    monkeypatch.setattr(cache_module, "IDS_RECONCILE_SECONDS", 0.0)
    checker = threading.Thread(target=cache._tick)
    checker.start()
    assert listing.wait(60)
    recs = _records({"d": "zebras graze"})
    writer = threading.Thread(target=store.upsert, args=(recs, _vectors(1, seed=42)))
    writer.start()
    writer.join(30)  # at 1M chunks the listing takes seconds: a write must not wait for it
    wrote_meanwhile = not writer.is_alive()
    release.set()
    checker.join(60)
    writer.join(60)
    assert wrote_meanwhile
    assert _found(cache, "zebras") and _found(cache, "cats purr")  # the check lost nothing written meanwhile
    assert set(cache.index().ids()) == set(real_ids())
    cache.close()


def test_the_ids_check_waits_a_hundred_times_its_last_duration_when_that_is_longer(
    store: ChunkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = _write(store, BASE)
    cache = KeywordCache(store)
    cache.index()
    monkeypatch.setattr(cache_module, "IDS_RECONCILE_SECONDS", 0.0)
    store.collection.delete(ids=[recs[0].id])  # a plain client's same-count replacement: only an ids check sees it
    _plain_add(store, "plain-1", "zebras graze", seed=9)
    cache._ids_check_seconds = 30.0  # as if the last listing had taken 30 s: the next one is due 50 min later
    cache._tick()
    assert not _found(cache, "zebras")
    cache._ids_check_seconds = 0.0
    cache._tick()
    assert _found(cache, "zebras") and not _found(cache, "cats purr")
    assert 0.0 < cache._ids_check_seconds < 30.0  # the check measured itself
    cache.close()
