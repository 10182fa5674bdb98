"""The change journal of a collection: which chunk ids each write through shortlist touched, kept in Chroma itself.

Every :class:`~shortlist.store.ChunkStore` write (upsert, delete) records its ids in a companion collection,
``<collection>.shortlist-journal``, on the same Chroma (embedded folder or server): anything that reaches the store
reaches the journal, and a process that keeps a derived copy of the collection (the keyword index of
:mod:`shortlist.keywords.live`) catches up by reading only the entries after its position.

An entry says *which ids changed*, never what they became; a reader applies it by reading those ids from the store
(upserting the ones there, deleting the ones gone), so applying is idempotent and order-free, and two writers
racing on one id cannot leave a reader with the loser's text. Each write batch has two entries:

- an **intent**, written before the batch reaches Chroma, listing the ids (at most :data:`IDS_PER_ENTRY` per entry);
- a **done**, written after Chroma accepted it, naming the intents it completes.

A reader applies an intent when its done arrives, or :data:`PENDING_SECONDS` after it saw the intent without one
(the writer died, or took that long): so a writer killed with SIGKILL in the middle of a batch leaves readers with
what the store holds, whichever part of the batch landed.

Entry ids are the ordered keys ``f"{t_ms:013d}-{writer}-{seq:06d}"`` (milliseconds since the epoch, a random id of
the writing store, its counter); the metadata ``t`` (milliseconds) is filterable, so "entries since" is one
``get(where={"t": {"$gte": ...}})``. Readers re-read the last :data:`SETTLE_MS` before their position, which covers
clocks of writers up to that far apart and an entry that lands a little after a later one. Entries older than
:data:`RETENTION_SECONDS` are deleted by writers (at most once a minute); a reader whose position is older runs a
full reconciliation with the store instead.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shortlist.errors import StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = [
    "IDS_PER_ENTRY",
    "JOURNAL_SUFFIX",
    "PENDING_SECONDS",
    "RETENTION_SECONDS",
    "SETTLE_MS",
    "Entry",
    "Journal",
    "is_journal_name",
    "journal_name",
]

logger = logging.getLogger(__name__)

#: The companion collection's name is the collection's plus this.
JOURNAL_SUFFIX = ".shortlist-journal"
#: Chroma's longest collection name.
_MAX_NAME = 512
#: Most chunk ids listed in one entry (a bigger batch writes several).
IDS_PER_ENTRY = 2000
#: Readers re-read this many milliseconds before their position (clock differences, entries landing late).
SETTLE_MS = 5000
#: An intent without its done is applied this long after a reader first saw it.
PENDING_SECONDS = 10.0
#: Entries older than this are deleted by writers.
RETENTION_SECONDS = 24 * 3600.0
_PRUNE_EVERY = 60.0
_DUMMY = [1.0]  # the journal's one-dimensional "vector": Chroma wants one per record
INTENT, DONE = "intent", "done"


def journal_name(collection: str) -> str:
    """The name of ``collection``'s journal collection."""
    name = collection + JOURNAL_SUFFIX
    if len(name) <= _MAX_NAME:
        return name
    import hashlib

    digest = hashlib.sha1(collection.encode()).hexdigest()[:12]  # noqa: S324 - a name, not a secret
    return f"{collection[:40]}-{digest}{JOURNAL_SUFFIX}"


def is_journal_name(name: str) -> bool:
    """Whether a collection name is a shortlist journal's (hidden from collection listings)."""
    return name.endswith(JOURNAL_SUFFIX)


@dataclass(frozen=True)
class Entry:
    """One journal entry.

    Attributes:
        key: Its ordered key (see the module).
        t: Milliseconds since the epoch, by the writer's clock.
        kind: ``"intent"`` (ids about to be written) or ``"done"`` (intents completed).
        ids: The chunk ids of an intent.
        done: The intent keys a done completes.
    """

    key: str
    t: int
    kind: str
    ids: tuple[str, ...] = ()
    done: tuple[str, ...] = ()


#: The journal collection's HNSW flush every 10 entries (Chroma's default is 1,000). Chroma keeps a collection's
#: writes in its log until the vector index is flushed, and each write costs in proportion to that log: with the
#: default a journal entry cost ~0.5 s after 800 entries (an intent holds up to 2,000 ids). Set when the journal is
#: created; Chroma does not apply it to an existing collection.
_LOG_SETTINGS = {"hnsw:sync_threshold": 10, "hnsw:batch_size": 10}


class Journal:
    """The journal of one collection (see the module).

    Args:
        client: The Chroma client of the collection.
        collection: The collection's name.

    Raises:
        StoreError: if Chroma cannot open or create the journal collection.
    """

    def __init__(self, client: ClientAPI, collection: str) -> None:
        self.collection_name = collection
        self.name = journal_name(collection)
        self.writer = secrets.token_hex(4)
        self._seq = 0
        self._lock = threading.Lock()
        self._last_prune = 0.0
        try:
            self._col: Collection = client.get_or_create_collection(
                self.name, embedding_function=None, metadata={"shortlist:journal-of": collection, **_LOG_SETTINGS}
            )
        except Exception as exc:
            msg = f"Chroma could not open the change journal {self.name!r} of {collection!r}: {exc}"
            raise StoreError(msg) from exc

    def _keys(self, n: int) -> tuple[int, list[str]]:
        with self._lock:
            t_ms = int(time.time() * 1000)
            keys = []
            for _ in range(n):
                self._seq += 1
                keys.append(f"{t_ms:013d}-{self.writer}-{self._seq:06d}")
        return t_ms, keys

    def _add(self, keys: Sequence[str], t_ms: int, kind: str, documents: Sequence[str], sizes: Sequence[int]) -> None:
        metas: list[Any] = [{"t": t_ms, "kind": kind, "writer": self.writer, "n": n} for n in sizes]
        try:
            vectors: Any = [_DUMMY] * len(keys)
            self._col.add(ids=list(keys), embeddings=vectors, documents=list(documents), metadatas=metas)
        except Exception as exc:
            msg = f"Chroma refused to write the change journal of {self.collection_name!r}: {exc}"
            raise StoreError(msg) from exc

    def intend(self, ids: Sequence[str]) -> list[str]:
        """Record that ``ids`` are about to be written or deleted; returns the intent keys (for :meth:`done`).

        Raises:
            StoreError: if Chroma refuses (then nothing should be written: a write readers would not hear of).
        """
        parts = [list(ids[i : i + IDS_PER_ENTRY]) for i in range(0, len(ids), IDS_PER_ENTRY)]
        if not parts:
            return []
        t_ms, keys = self._keys(len(parts))
        self._add(keys, t_ms, INTENT, [json.dumps(p) for p in parts], [len(p) for p in parts])
        return keys

    def done(self, intents: Sequence[str]) -> None:
        """Record that the writes of these intents reached the store (or failed: readers re-read either way).

        A failure here is logged, not raised: the write itself succeeded, and readers apply an intent without its
        done :data:`PENDING_SECONDS` after they saw it.
        """
        if not intents:
            return
        t_ms, keys = self._keys(1)
        try:
            self._add(keys, t_ms, DONE, [json.dumps(list(intents))], [len(intents)])
        except StoreError as exc:
            logger.warning("%s (readers will apply the write after %.0f s)", exc, PENDING_SECONDS)
        self._maybe_prune()

    def _read(self, **query: Any) -> Any:
        """One ``get`` on the journal collection, Chroma's failures as :class:`~shortlist.errors.StoreError`."""
        try:
            return self._col.get(**query)
        except Exception as exc:
            msg = f"Chroma could not read the change journal of {self.collection_name!r}: {exc}"
            raise StoreError(msg) from exc

    def _entries(self, **query: Any) -> list[Entry]:
        """The entries a ``get`` returns, in key order (a malformed one is skipped with a warning)."""
        got = self._read(include=["documents", "metadatas"], **query)
        entries = []
        for key, doc, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True):
            meta = meta or {}
            try:
                values = tuple(str(v) for v in json.loads(doc or "[]"))
            except ValueError:  # pragma: no cover - only shortlist writes these
                logger.warning("Skipping a malformed journal entry %s", key)
                continue
            kind = str(meta.get("kind", INTENT))
            t = int(meta.get("t", 0))
            entries.append(Entry(key, t, kind, values if kind == INTENT else (), values if kind == DONE else ()))
        entries.sort(key=lambda e: e.key)
        return entries

    def since(self, t_ms: int) -> list[Entry]:
        """The entries with ``t >= t_ms``, in key order.

        Raises:
            StoreError: if Chroma cannot be read.
        """
        return self._entries(where={"t": {"$gte": int(t_ms)}})

    def get(self, keys: Sequence[str]) -> list[Entry]:
        """The intent entries with these keys that still exist (a done's intents, read after a restart).

        Raises:
            StoreError: if Chroma cannot be read.
        """
        if not keys:
            return []
        return [e for e in self._entries(ids=list(keys)) if e.kind == INTENT]

    def latest(self) -> str | None:
        """The highest key now in the journal (``None`` when empty): a new copy built from the store starts there."""
        newest = self.since(int(time.time() * 1000) - 2 * SETTLE_MS)
        if newest:
            return newest[-1].key
        ids = self._read(include=[])["ids"]
        return max(ids) if ids else None

    def _maybe_prune(self) -> None:
        now = time.time()
        if now - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = now
        cutoff = int((now - RETENTION_SECONDS) * 1000)
        try:
            where: Any = {"t": {"$lt": cutoff}}
            self._col.delete(where=where)
        except Exception as exc:  # pragma: no cover - the next writer tries again
            logger.debug("Could not prune the change journal of %s: %s", self.collection_name, exc)


def key_time(key: str | None) -> int:
    """The milliseconds of a journal key (``0`` for ``None`` or a key of another shape)."""
    if not key:
        return 0
    try:
        return int(key.split("-", 1)[0])
    except ValueError:
        return 0
