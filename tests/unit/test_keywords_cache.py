"""KeywordCache over an in-memory collection: built once, rebuilt when the collection changes, saved and reloaded
with its calibration (real BM25, no model, no Chroma)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shortlist.keywords import INDEX_VERSION, Calibration, KeywordCache, KeywordIndex
from shortlist.keywords.cache import ids_fingerprint, keyword_folder


@dataclass
class _Chunk:
    id: str
    text: str


class _Collection:
    def __init__(self, path: Path | None) -> None:
        self.name = "col"
        self.path = path
        self.rows = {"a": "cats purr softly", "b": "dogs bark loudly", "c": "birds sing at dawn"}
        self.builds = 0

    def count(self) -> int:
        return len(self.rows)

    def ids(self, *, page: int = 2000) -> list[str]:
        return list(self.rows)

    def iter_chunks(self) -> Iterator[list[_Chunk]]:
        self.builds += 1
        yield [_Chunk(i, t) for i, t in self.rows.items()]


def test_fingerprint_and_folder() -> None:
    assert ids_fingerprint(["b", "a"]) == ids_fingerprint(["a", "b"]) != ids_fingerprint(["a"])
    assert ids_fingerprint([]).startswith(INDEX_VERSION + ":")
    assert keyword_folder(None, "x") is None
    assert keyword_folder(Path("/db"), "x") == Path("/db/shortlist-keyword/x")


def test_index_is_built_once_and_rebuilt_on_change() -> None:
    col = _Collection(None)
    cache = KeywordCache(col)
    first = cache.index()
    assert cache.index() is first and col.builds == 1
    assert [i for i, _ in first.search("barking dogs", 3)] == ["b"]
    cache.touch()  # a write with the same ids: the hash is checked, the index kept
    assert cache.index() is first and col.builds == 1
    col.rows["d"] = "fish swim and dogs watch"
    second = cache.index()  # the count changed
    assert second is not first and col.builds == 2
    assert {i for i, _ in second.search("dogs", 5)} == {"b", "d"}
    assert cache.refresh() is second  # checked again: same ids, same index


def test_saved_and_reloaded_with_the_calibration(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    col = _Collection(tmp_path)
    computed: list[str] = []

    def compute(index: KeywordIndex) -> Calibration:
        computed.append(index.fingerprint)
        return Calibration(fingerprint=index.fingerprint, weights={"latin": 0.42})

    cache = KeywordCache(col)
    cal = cache.calibration(compute)
    assert cal.weights == {"latin": 0.42} and len(computed) == 1
    assert cache.calibration(compute) is cal and len(computed) == 1
    folder = tmp_path / "shortlist-keyword" / "col"
    assert (folder / "shortlist-ids.json").is_file() and (folder / "calibration.json").is_file()

    log = logging.getLogger("test.keywords")
    with caplog.at_level(logging.INFO, logger="test.keywords"):
        again = KeywordCache(col, log=log)
        assert again.calibration(compute) == cal  # reloaded: not computed again
    assert len(computed) == 1 and col.builds == 1
    assert any("Loaded the keyword index" in r.message and r.name == "test.keywords" for r in caplog.records)

    col.rows["e"] = "a new chunk about owls"
    redone = again.calibration(compute)
    assert len(computed) == 2 and redone.fingerprint == again.index().fingerprint != cal.fingerprint
    assert Calibration.load(folder) == redone
