"""The keyword index and the calibration of one collection, kept up to date with it and saved beside it.

:class:`KeywordCache` builds the BM25 index from the collection's own chunks on first use, never fed separately, so
it cannot hold a chunk the collection does not have. Before handing the index out, if the collection's size changed
or this process wrote to it (:meth:`KeywordCache.touch`), the hash of the collection's ids is compared with the
index's and the index rebuilt when they differ. An embedded store also keeps the index and its calibration in
``<chroma folder>/shortlist-keyword/<collection>/`` and reloads them after a restart while the ids hash still
matches; a server-backed or in-memory store rebuilds them on first use.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from shortlist.keywords.bm25 import INDEX_VERSION, KeywordIndex
from shortlist.keywords.calibration import Calibration

__all__ = ["KEYWORD_FOLDER", "KeywordCache", "ids_fingerprint", "keyword_folder"]

logger = logging.getLogger(__name__)

#: The folder, inside an embedded Chroma folder, that holds one sub-folder per collection.
KEYWORD_FOLDER = "shortlist-keyword"
#: Ids per read when hashing the collection's ids.
_ID_PAGE = 20_000


class _Chunk(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...


class _Store(Protocol):
    """What the cache reads from a :class:`~shortlist.store.ChunkStore`."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path | None: ...

    def count(self) -> int: ...

    def ids(self, *, page: int = ...) -> list[str]: ...

    def iter_chunks(self) -> Iterator[Sequence[_Chunk]]: ...


def keyword_folder(path: Path | None, collection: str) -> Path | None:
    """Where an embedded store keeps a collection's keyword index and calibration (``None``: not embedded)."""
    if path is None:
        return None
    return path / KEYWORD_FOLDER / collection


def ids_fingerprint(ids: Sequence[str]) -> str:
    """The fingerprint of an index over these chunk ids: the index version and a hash of the sorted ids."""
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    return f"{INDEX_VERSION}:{digest}"


class KeywordCache:
    """One collection's keyword index and calibration, rebuilt when the collection changes (see the module).

    Args:
        store: The collection's :class:`~shortlist.store.ChunkStore`.
        log: Where to report loading, building and saving (default: this module's logger; the pre-filter passes
            its own, whose log has always carried these messages).

    Thread-safe: one lock guards the index, another the calibration.
    """

    def __init__(self, store: _Store, *, log: logging.Logger | None = None) -> None:
        self.store = store
        self._log = log if log is not None else logger
        self._lock = threading.Lock()
        self._index: KeywordIndex | None = None
        self._quick = ""
        self._generation = 0
        self._cal_lock = threading.Lock()
        self._cal: Calibration | None = None

    @property
    def folder(self) -> Path | None:
        """Where the index and calibration are saved (``None`` for a server-backed or in-memory store)."""
        return keyword_folder(self.store.path, self.store.name)

    def touch(self) -> None:
        """Note a write by this process: the next :meth:`index` compares the ids hash again."""
        with self._lock:
            self._generation += 1

    def index(self) -> KeywordIndex:
        """The BM25 index over the collection, (re)built if the collection changed since it was built."""
        with self._lock:
            quick = f"{self.store.count()}:{self._generation}"  # fresh: another writer may have added chunks
            if self._index is not None and self._quick == quick:
                return self._index
            # Something changed (or first use): the ids hash says whether the index still matches the collection.
            fingerprint = ids_fingerprint(self.store.ids(page=_ID_PAGE))
            if self._index is None or self._index.fingerprint != fingerprint:
                self._index = self._load_or_build(fingerprint)
            self._quick = quick
            return self._index

    def _load_or_build(self, fingerprint: str) -> KeywordIndex:
        folder = self.folder
        cached = KeywordIndex.load(folder) if folder is not None else None
        if cached is not None and cached.fingerprint == fingerprint:
            self._log.info("Loaded the keyword index of %d chunks from %s", len(cached), folder)
            return cached
        t = time.perf_counter()
        items = ((c.id, c.text) for batch in self.store.iter_chunks() for c in batch)
        index = KeywordIndex.build(items, fingerprint=fingerprint)
        self._log.info("Built the keyword index of %d chunks in %.2fs", len(index), time.perf_counter() - t)
        if folder is not None:
            try:
                index.save(folder)
            except OSError as exc:  # a read-only folder: keep the index in memory only
                self._log.warning("Could not save the keyword index to %s: %s", folder, exc)
        return index

    def refresh(self) -> KeywordIndex:
        """Check the index against the collection now (after writes by another process) and return it."""
        with self._lock:
            self._quick = ""
        return self.index()

    def calibration(self, compute: Callable[[KeywordIndex], Calibration]) -> Calibration:
        """The calibration of the current index: kept, reloaded from the folder, or ``compute(index)`` and saved.

        Args:
            compute: Computes a calibration for an index (its fingerprint must be the index's); called only when
                neither this object nor the folder holds one for the current index.

        Returns:
            The :class:`~shortlist.keywords.calibration.Calibration` whose fingerprint is the index's.
        """
        index = self.index()
        with self._cal_lock:
            if self._cal is not None and self._cal.fingerprint == index.fingerprint:
                return self._cal
            folder = self.folder
            cached = Calibration.load(folder) if folder is not None else None
            if cached is not None and cached.fingerprint == index.fingerprint:
                self._cal = cached
                return cached
            cal = compute(index)
            if folder is not None and folder.is_dir():
                try:
                    cal.save(folder)
                except OSError as exc:
                    self._log.warning("Could not save the hybrid calibration to %s: %s", folder, exc)
            self._cal = cal
            return cal
