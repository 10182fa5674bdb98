"""ChunkStore: the one class that reads and writes a collection's chunks, vectors and metadata in Chroma.

It builds on the rooms of :mod:`shortlist.store`: :mod:`~shortlist.store.client` opens the client,
:mod:`~shortlist.store.contract` opens the collection and guards its model, :mod:`~shortlist.store.metadata`
sanitises metadata and keeps the field registry, :mod:`~shortlist.store.accounting` keeps the count and the token
tally, :mod:`~shortlist.store.records` holds the chunks' types, :mod:`~shortlist.store.reading` the reads (paged:
Chroma's SQLite refuses very large ``IN`` lists) and queries. What is left here is opening the store and writing:
upserts and metadata updates a batch at a time (the client's limit), deletes a page at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from shortlist.config import DEFAULT_CHROMA_PORT, DEFAULT_COLLECTION, ChromaServer, resolve_chroma_location
from shortlist.errors import ConfigError, InputError, StoreError
from shortlist.store import client as _client
from shortlist.store.accounting import CountCache, TokenTally
from shortlist.store.contract import ModelContract
from shortlist.store.journal import Journal
from shortlist.store.metadata import KEY_SOURCE, KEY_TOKENS, FieldRegistry
from shortlist.store.reading import READ_PAGE, PagedReads
from shortlist.store.records import ChunkRecord

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from shortlist.encoder import Encoder

__all__ = ["ChunkStore"]

logger = logging.getLogger(__name__)

_FALLBACK_BATCH = 5000  # rows per write when the client does not say its limit


class _ClosedCollection:
    """Stands in for the collection of a closed store: any use is a clear StoreError, not Chroma's own confusion."""

    def __init__(self, store: str) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        msg = f"{self._store} is closed: open a new ChunkStore (or Prefilter) to use the collection again."
        raise StoreError(msg)


class ChunkStore(PagedReads):
    """Chunks of text with their vectors and metadata in one Chroma collection (cosine space).

    Args:
        collection: The collection's name (3-512 characters of ``[a-zA-Z0-9._-]``). Default ``"shortlist"``.
        path: Folder of an embedded database. Default (when neither ``host`` nor ``client`` is given): the
            server of ``SHORTLIST_CHROMA_URL`` if set, else ``SHORTLIST_CHROMA_PATH``, else
            ``<SHORTLIST_HOME>/chroma``.
        host: Host of a Chroma server (``chroma run``); ``port`` defaults to 8000.
        port: Port of that server.
        client: A Chroma client you built (``chromadb.PersistentClient``, ``HttpClient``, ``EphemeralClient``).
        encoder: The encoder whose vectors go in; default :meth:`Encoder.shared() <shortlist.encoder.Encoder.shared>`.
            Only its model name and dimension are read here: opening a store does not load the weights.

    Raises:
        ConfigError: if more than one of ``path``, ``host``, ``client`` is given, or the name is not valid.
        EmbeddingModelMismatchError: if the collection was built with another model or dimension, or not with
            the cosine space.
        StoreError: if Chroma cannot be reached or refuses to open the collection.

    Example:
        ```python
        import numpy as np
        from shortlist.store import ChunkRecord, ChunkStore

        store = ChunkStore.in_memory("example")
        rec = ChunkRecord(source="doc-1", chunk=0, text="Cats sleep a lot.", tokens=5, metadata={"lang": "en"})
        vec = np.ones((1, 384), dtype=np.float32) / np.sqrt(384)
        print(store.upsert([rec], vec))
        # 1
        print(store.count(), store.get([rec.id])[0].metadata)
        # 1 {'lang': 'en', 'source': 'doc-1', 'chunk': 0}
        ```
    """

    def __init__(
        self,
        collection: str = DEFAULT_COLLECTION,
        *,
        path: str | Path | None = None,
        host: str | None = None,
        port: int | None = None,
        client: ClientAPI | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        given = [name for name, value in (("path", path), ("host", host), ("client", client)) if value is not None]
        if len(given) > 1:
            msg = f"Give only one of 'path', 'host' or 'client' for a ChunkStore; got {', '.join(given)}."
            raise ConfigError(msg)
        if port is not None and host is None:
            msg = "'port' needs 'host' (a Chroma server); for an embedded database give 'path'."
            raise ConfigError(msg)
        if encoder is None:
            from shortlist.encoder import Encoder

            encoder = Encoder.shared()
        self.encoder = encoder
        self.model_name: str = encoder.model_name
        self.dimension: int = int(encoder.dimension)
        self.path: Path | None = None
        self.host = host
        self.port = port
        if client is not None:
            self.client: ClientAPI = client
            self.kind = "client"
        else:
            where = resolve_chroma_location(path, host=host, port=port)
            if isinstance(where, ChromaServer):  # host given, or SHORTLIST_CHROMA_URL set and no path
                self.host, self.port = where.host, where.port
                self.client = _client.open_client(host=where.host, port=where.port)
                self.kind = "server"
            else:
                self.path = where.absolute()  # later reads (the keyword copy beside it) must not follow a chdir
                self.client = _client.open_client(self.path)
                self.kind = "embedded"
        self.name = collection
        self._lock = threading.RLock()
        self._contract = ModelContract(self.model_name, self.dimension)
        self._tokens = TokenTally()
        self._count = CountCache()
        self._closed = False
        try:
            self.collection: Collection = self._contract.open_collection(self.client, collection)
        except BaseException:
            self.close()  # an embedded folder is not left held by a store that never opened
            raise
        self._fields = FieldRegistry(self.client, self.collection, self._lock)
        self._journal: Journal | None = None
        self._journal_lock = threading.Lock()
        self._listeners: list[Callable[[Sequence[str], Sequence[str]], None]] = []
        try:
            self.max_batch_size = int(self.client.get_max_batch_size())
        except Exception:  # pragma: no cover - every 1.x client has it
            self.max_batch_size = _FALLBACK_BATCH
        if self.max_batch_size <= 0:
            self.max_batch_size = _FALLBACK_BATCH
        self._preloading = self._preload()

    def _preload(self) -> threading.Thread:
        """Have Chroma load the collection's vector index now, in a thread, rather than in the first query.

        Chroma reads a collection's HNSW index into memory on its first query (an embedded folder into this
        process; a server into its own): 4-5 s at 1M chunks, in Chroma's native code, which lets Python threads
        run meanwhile. Asking for one neighbour at open overlaps that with whatever the application does before
        its first search (importing and loading the encoder, opening the keyword copy). Any error is left to the
        real query, which raises it; :meth:`close` waits for the thread.
        """
        collection = self.collection
        probe = np.zeros((1, self.dimension), dtype=np.float32)
        probe[0, 0] = 1.0

        def load() -> None:
            try:
                collection.query(query_embeddings=probe, n_results=1, include=[])
            except Exception as exc:  # the first real query meets it again, and says it
                logger.debug("Preloading %r: %s", self.name, exc)

        thread = threading.Thread(target=load, name=f"shortlist-preload-{self.name}", daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        """Close the store: its Chroma client (unless you passed one in) and its hold on an embedded folder.

        An embedded folder is locked to one process while any store of that process has it open (Chroma's embedded
        mode allows one process; :mod:`shortlist.store.folder_lock`); closing the last store of the folder lets
        another process open it. Closing twice does nothing; a closed store must not be used again. A store is
        also a context manager: ``with ChunkStore(path=...) as store: ...`` closes it at the end of the block.
        """
        if self._closed:
            return
        self._closed = True
        preloading = getattr(self, "_preloading", None)  # not there when __init__ failed to open the collection
        if preloading is not None:
            preloading.join()  # Chroma's client must not close under the index it is loading
        if hasattr(self, "collection"):  # not there when __init__ failed to open it
            self.collection = cast("Collection", _ClosedCollection(repr(self)))
        if self.kind == "client":
            return  # the caller's client is the caller's to close
        _client.close_client(self.client, self.path)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> ChunkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def in_memory(cls, collection: str = DEFAULT_COLLECTION, *, encoder: Encoder | None = None) -> ChunkStore:
        """A store in memory only, in a private Chroma database of its own (two in-memory stores never share).

        Raises:
            StoreError: if Chroma cannot create the database.
        """
        store = cls(collection, client=_client.memory_client(), encoder=encoder)
        store.kind = "memory"
        return store

    @staticmethod
    def list_collections(
        *, path: str | Path | None = None, host: str | None = None, port: int | None = None
    ) -> dict[str, int]:
        """The collections of a Chroma database with their chunk counts, sorted by name (``{}`` if none yet).

        An embedded folder that does not exist (or is empty) is not created. See
        :func:`shortlist.store.client.list_collections`.

        Raises:
            ConfigError: for both ``path`` and ``host``, or ``port`` without ``host``.
            StoreError: if Chroma cannot be opened or read.
        """
        return _client.list_collections(path=path, host=host, port=port)

    @staticmethod
    def drop_collection(
        name: str, *, path: str | Path | None = None, host: str | None = None, port: int | None = None
    ) -> bool:
        """Delete a whole collection if it exists; returns whether one was deleted (a missing folder stays missing).

        Raises:
            StoreError: if Chroma cannot be opened or refuses.
        """
        return _client.drop_collection(name, path=path, host=host, port=port)

    # ------------------------------------------------------------------ facts
    def count(self, *, max_age: float = 0.0) -> int:
        """Number of chunks in the collection.

        Args:
            max_age: Accept a count read at most this many seconds ago (default 0: ask Chroma now). Chroma counts
                by scanning, which costs milliseconds at 100k chunks; searches use a recent count. This store's
                own writes always refresh it.
        """
        cached = self._count.get(max_age)
        if cached is not None:
            return cached
        try:
            n = int(self.collection.count())
        except Exception as exc:
            msg = f"Chroma could not count collection {self.name!r}: {exc}"
            raise StoreError(self._failed(msg, exc)) from exc
        self._count.put(n)
        return n

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        where = {"embedded": str(self.path), "server": f"{self.host}:{self.port or DEFAULT_CHROMA_PORT}"}.get(
            self.kind, self.kind
        )
        return f"ChunkStore({self.name!r}, {where}, model={self.model_name!r})"

    def corpus_tokens(self) -> int:
        """Word pieces in all chunks of the collection (read once, then kept up to date by this store's writes)."""
        with self._lock:
            return self._tokens.total(lambda: (c.tokens for b in self.iter_chunks(include_text=False) for c in b))

    def fields(self) -> set[str]:
        """Metadata keys that chunks of this collection carry (``source`` and ``chunk`` always)."""
        return self._fields.known()

    def check_where(self, where: Mapping[str, Any]) -> None:
        """Check a metadata filter before Chroma sees it.

        Raises:
            InputError: if it is not valid Chroma syntax, or names a field no chunk in the collection has (Chroma
                would silently match nothing); the message lists the known fields.
        """
        self._fields.check_where(where)

    # ------------------------------------------------------------------ the change journal
    @property
    def collection_id(self) -> str:
        """The collection's id in Chroma (a collection dropped and made again gets a new one)."""
        return str(self.collection.id)

    @property
    def journal(self) -> Journal | None:
        """The collection's change journal (:mod:`shortlist.store.journal`); ``None`` for an in-memory store,
        which no other process can see. Opened (created in Chroma) on first use.

        Raises:
            StoreError: if Chroma cannot open it.
        """  # noqa: D205
        if self.kind == "memory":
            return None
        with self._journal_lock:  # not the write lock: readers of the journal run beside this store's writes
            if self._journal is None:
                self._journal = Journal(self.client, self.name)
            return self._journal

    def on_change(self, listener: Callable[[Sequence[str], Sequence[str]], None]) -> None:
        """Call ``listener(ids, intents)`` after each write of this store, also a failed one.

        ``ids`` are the chunk ids the write touched, ``intents`` its journal intent keys.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Sequence[str], Sequence[str]], None]) -> None:
        """Stop calling a listener added with :meth:`on_change` (absent: nothing happens)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, notes: Sequence[tuple[Sequence[str], Sequence[str]]]) -> None:
        """Tell the listeners about writes (called after the write lock is released: a listener may read)."""
        for ids, intents in notes:
            for listener in list(self._listeners):
                try:
                    listener(ids, intents)
                except Exception:  # a listener's failure must not turn a landed write into an error
                    logger.exception("A change listener of %s failed", self)

    def _journaled(
        self, ids: Sequence[str], write: Callable[[], object], notes: list[tuple[Sequence[str], Sequence[str]]]
    ) -> None:
        """Run ``write`` (one Chroma call over ``ids``) between the journal's intent and done entries.

        ``(ids, intents)`` goes into ``notes`` whether or not the write succeeded, for :meth:`_changed`.
        """
        journal = self.journal
        try:
            intents = journal.intend(ids) if journal is not None else []
        except StoreError as exc:  # nothing written: say which server failed, as the store's own errors do
            raise StoreError(self._failed(str(exc), exc.__cause__ or exc)) from exc
        try:
            write()
        finally:
            if journal is not None:
                journal.done(intents)
            notes.append((ids, intents))

    @contextmanager
    def _notifying(self, notes: list[tuple[Sequence[str], Sequence[str]]]) -> Iterator[None]:
        """Tell the listeners about ``notes`` on the way out (entered before the write lock, so after its release)."""
        try:
            yield
        finally:
            self._changed(notes)

    def _upsert_call(
        self, ids: list[str], vecs: NDArray[np.float32], docs: list[str], metas: list[Any], start: int, end: int
    ) -> Callable[[], object]:
        def call() -> None:
            self.collection.upsert(
                ids=ids[start:end], embeddings=vecs[start:end], documents=docs[start:end], metadatas=metas[start:end]
            )

        return call

    # ------------------------------------------------------------------ writing
    def _check_vectors(self, embeddings: Any, n: int) -> NDArray[np.float32]:
        return self._contract.check_vectors(embeddings, n, self.name)

    def upsert(self, records: Sequence[ChunkRecord], embeddings: Any) -> int:
        """Write chunks and their vectors; a chunk whose id is already stored is overwritten (same id, same text).

        Duplicate ids inside ``records`` are written once (the last one wins). Writes are split into batches of
        the client's maximum batch size (:attr:`max_batch_size`). Metadata is sanitised first (see the module
        docstring): a bad value raises before anything is written.

        Args:
            records: The chunks.
            embeddings: Their vectors, ``(len(records), dimension)``, L2-normalised.

        Returns:
            The number of distinct chunks written.

        Raises:
            InputError: on bad metadata or a bad array.
            EmbeddingModelMismatchError: if the vectors' dimension is not the collection's.
            StoreError: if Chroma refuses the write.
        """
        vectors = self._check_vectors(embeddings, len(records))
        if not records:
            return 0
        last: dict[str, int] = {}
        for i, rec in enumerate(records):
            last[rec.id] = i
        order = sorted(last.values())
        metas = [records[i].chroma_metadata() for i in order]  # raises before any write
        ids = [records[i].id for i in order]
        docs = [records[i].text for i in order]
        vecs = vectors[order]
        notes: list[tuple[Sequence[str], Sequence[str]]] = []
        with self._notifying(notes), self._lock:
            previous = self._tokens_of(ids) if self._tokens.known else {}
            self._fields.record({k for m in metas for k in m})
            step = self.max_batch_size
            for start in range(0, len(ids), step):
                end = start + step
                try:
                    self._journaled(ids[start:end], self._upsert_call(ids, vecs, docs, metas, start, end), notes)
                except StoreError:
                    self._tokens.forget()
                    raise
                except Exception as exc:
                    self._tokens.forget()  # recount on next use
                    msg = f"Chroma refused to write {end - start} chunks to {self.name!r}: {exc}"
                    raise StoreError(self._failed(msg, exc)) from exc
            self._count.clear()
            self._tokens.adjust(sum(int(m[KEY_TOKENS]) for m in metas) - sum(previous.values()))
        return len(ids)

    def update_metadata(self, records: Sequence[ChunkRecord]) -> int:
        """Rewrite the metadata of stored chunks (without touching their vectors). Returns how many."""
        if not records:
            return 0
        metas = [r.chroma_metadata() for r in records]
        ids = [r.id for r in records]
        with self._lock:
            self._fields.record({k for m in metas for k in m})
            for start in range(0, len(ids), self.max_batch_size):
                end = start + self.max_batch_size
                try:
                    self.collection.update(ids=ids[start:end], metadatas=metas[start:end])  # type: ignore[arg-type]
                except Exception as exc:
                    msg = f"Chroma refused to update metadata in {self.name!r}: {exc}"
                    raise StoreError(self._failed(msg, exc)) from exc
        return len(ids)

    def delete(
        self,
        ids: Sequence[str] | None = None,
        *,
        source: str | Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> int:
        """Delete chunks by id, by document id (``source``), or by a metadata filter.

        Returns:
            The number of chunks deleted.

        Raises:
            InputError: if nothing selects the chunks (deleting everything needs ``where={"chunk": {"$gte": 0}}``)
                or the filter is invalid.
        """
        if ids is None and source is None and where is None:
            msg = "delete() needs ids, source or where; nothing was deleted."
            raise InputError(msg)
        clauses: list[dict[str, Any]] = []
        if source is not None:
            sources = [source] if isinstance(source, str) else list(source)
            if not sources:
                return 0
            clauses.append({KEY_SOURCE: {"$in": sources}} if len(sources) > 1 else {KEY_SOURCE: sources[0]})
        if where is not None:
            self.check_where(where)
            clauses.append(dict(where))
        filt: dict[str, Any] | None = None
        if clauses:
            filt = clauses[0] if len(clauses) == 1 else {"$and": clauses}
        notes: list[tuple[Sequence[str], Sequence[str]]] = []
        with self._notifying(notes), self._lock:
            if ids is not None:
                ids = list(ids)
                if not ids:
                    return 0
                targets = [c.id for c in self.get(ids, where=filt, include_text=False)]
            else:
                targets = [c.id for batch in self.iter_chunks(where=filt, include_text=False) for c in batch]
            if not targets:
                return 0
            tokens = self._tokens_of(targets) if self._tokens.known else {}
            for start in range(0, len(targets), READ_PAGE):
                page = targets[start : start + READ_PAGE]
                try:
                    self._journaled(page, partial(self.collection.delete, ids=page), notes)
                except StoreError:
                    self._tokens.forget()
                    raise
                except Exception as exc:
                    self._tokens.forget()
                    msg = f"Chroma refused to delete from {self.name!r}: {exc}"
                    raise StoreError(self._failed(msg, exc)) from exc
            self._count.clear()
            self._tokens.adjust(-sum(tokens.values()))
        return len(targets)
