"""The keyword side of a collection, kept in step with the store across processes: :class:`KeywordCache`.

The index is a :class:`~shortlist.keywords.segments.LiveKeywordIndex` (tantivy segments on disk, BM25 rescored to
:mod:`shortlist.keywords.bm25`'s scores) in a folder of its own:

- an embedded store: ``<chroma folder>/shortlist-keyword/<collection>-<collection id>/`` (copying the folder copies
  the index);
- a Chroma server: ``$SHORTLIST_CACHE/keywords/<host>_<port>/<collection>-<collection id>/``;
- an in-memory store: a temporary folder, deleted when the process no longer uses it.

The collection's id in the name keeps a dropped and re-made collection from reusing an old copy.

**Following the store.** Every write through a :class:`~shortlist.store.ChunkStore` lists its ids in the
collection's change journal (:mod:`shortlist.store.journal`). The process that holds the folder's writer lock (the
*applier*) applies, every :data:`POLL_SECONDS` in a background thread, the journal entries after its position: it
reads the changed ids from the store, adds the ones there and deletes the ones gone, and commits with the new
position. Cost: the changed chunks, never the corpus. This process's own writes are applied before the write call
returns (read your writes). Other processes on the same machine and cache folder open the folder as readers and
reload when the applier commits; when the applier exits, one of them takes over its lock.

**Cold start.** A process that finds the folder opens it (memory-mapped) and catches up from its position; only
when there is none (or it is of another format) is the index built from the store's texts, once.

**Writes that bypass the journal** (a plain ``chromadb`` client): the applier compares the store's count with the
index's every :data:`RECONCILE_SECONDS` and, when they differ, the ids; every :data:`IDS_RECONCILE_SECONDS` it
compares the ids anyway (or, when listing them took longer than a hundredth of that, every
:data:`IDS_CHECK_SHARE` times the last listing's duration: the check takes at most 1% of the time, whatever the
size); :meth:`KeywordCache.refresh` also compares every text's hash (same-id rewrites).

**The calibration** of the hybrid fusion is kept in the folder with the count it was computed at; it stays until
the chunks changed since then reach :data:`MATERIAL_CHANGE` of that count (or the count itself moved that much), and
is then recomputed after the writing process's ingest (:meth:`KeywordCache.after_ingest`) or in the background,
never inside a query: a query without any calibration uses the priors while one is computed.
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist._io import atomic_write, file_lock
from shortlist.config import DEFAULT_CHROMA_PORT, user_cache_dir
from shortlist.errors import StoreError
from shortlist.keywords.bm25 import tokenize
from shortlist.keywords.calibration import Calibration
from shortlist.keywords.segments import LiveKeywordIndex, text_hash
from shortlist.store.journal import DONE, PENDING_SECONDS, RETENTION_SECONDS, SETTLE_MS, key_time

if TYPE_CHECKING:
    from shortlist.store import ChunkStore

__all__ = [
    "IDS_CHECK_SHARE",
    "IDS_RECONCILE_SECONDS",
    "KEYWORD_FOLDER",
    "MATERIAL_CHANGE",
    "POLL_SECONDS",
    "RECONCILE_SECONDS",
    "KeywordCache",
    "keyword_folder",
]

logger = logging.getLogger(__name__)

#: The folder, inside an embedded Chroma folder, that holds one sub-folder per collection.
KEYWORD_FOLDER = "shortlist-keyword"
#: How often the applier reads the journal (seconds; a Chroma server or a client you built).
POLL_SECONDS = 0.5
#: How often the applier compares the store's count with the index's (writes by plain chromadb clients).
RECONCILE_SECONDS = 60.0
#: How often it compares the ids anyway (plain-client writes that kept the count).
IDS_RECONCILE_SECONDS = 600.0
#: ...or, if longer, this many times the last ids check's duration (6-12 s at 1M chunks against a Chroma server, where
#: a write that arrives meanwhile waits for the server to finish that read: about 5 s measured).
IDS_CHECK_SHARE = 100.0
#: The calibration is recomputed once the chunks changed since it was computed reach this share of the count.
MATERIAL_CHANGE = 0.10
#: Chunks read from the store per step while building or reconciling.
_PAGE = 5000
_STATE_FILE = "shortlist-calibration-state.json"
_WRITER_LOCK = "writer.lock"


def keyword_folder(store: ChunkStore) -> Path | None:
    """Where a store's keyword index lives (see the module); ``None`` for an in-memory database."""
    sub = f"{store.name}-{store.collection_id}"
    if store.kind == "embedded" and store.path is not None:
        return store.path / KEYWORD_FOLDER / sub
    if store.kind == "server" and store.host is not None:
        return user_cache_dir() / "keywords" / _server_key(store.host, store.port or DEFAULT_CHROMA_PORT) / sub
    if store.kind == "client":
        try:
            settings = store.client.get_settings()
        except Exception:  # pragma: no cover - every 1.x client has settings
            return None
        if getattr(settings, "is_persistent", False) and getattr(settings, "persist_directory", None):
            return Path(settings.persist_directory).absolute() / KEYWORD_FOLDER / sub
        host = getattr(settings, "chroma_server_host", None)
        if host:
            port = int(getattr(settings, "chroma_server_http_port", None) or DEFAULT_CHROMA_PORT)
            return user_cache_dir() / "keywords" / _server_key(str(host), port) / sub
    return None


def _server_key(host: str, port: int) -> str:
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in host)
    return f"{safe}_{port}"


class KeywordCache:
    """One collection's keyword index, following the store (see the module).

    Args:
        store: The collection's :class:`~shortlist.store.ChunkStore`.
        log: Where to report building, catching up and calibrating (default: this module's logger).
        poll_seconds: How often the applier reads the journal (default :data:`POLL_SECONDS`; an embedded store,
            which only this process can write, reads it at start and reconciles every :data:`RECONCILE_SECONDS`).

    Thread-safe. Call :meth:`close` to stop its thread and free the folder (the process's exit does too). Use
    :meth:`shared` to get the one cache of a collection's folder in this process (what the pre-filter does).
    """

    _registry: dict[str, KeywordCache] = {}
    _registry_lock = threading.Lock()

    def __init__(
        self, store: ChunkStore, *, log: logging.Logger | None = None, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self._stores: list[ChunkStore] = [store]
        self._users = 1
        self._key: str | None = None
        self._log = log if log is not None else logger
        self._lock = threading.RLock()
        self._index: LiveKeywordIndex | None = None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._folder: Path | None = None
        self._pending: dict[str, tuple[tuple[str, ...], float]] = {}  # intent key -> (ids, apply-anyway deadline)
        self._eager = True  # the first catch-up (at opening, at a takeover) applies intents without a done at once
        self._seen: dict[str, int] = {}  # keys handled inside the settle window -> their t
        self._intents: dict[str, tuple[str, ...]] = {}  # intents applied in the window, for a done that comes late
        # Keys whose handling is final (a done read, the intents it closes, this process's own writes): saved with
        # the position, so that the next opening skips them when it reads the window again.
        self._final: dict[str, int] = {}
        self._top: str | None = None  # the highest journal key handled
        self._position_mtime = 0.0
        self._last_count_check = time.monotonic()
        self._last_ids_check = time.monotonic()
        self._ids_check_seconds = 0.0  # how long the last periodic ids check took
        self._ids_checked = False  # one periodic ids check done (an embedded folder's only one)
        self._changed = 0  # chunks applied since the calibration
        self._cal: Calibration | None = None
        self._cal_state: dict[str, Any] = {}
        self._cal_running = False
        self._cal_thread: threading.Thread | None = None
        self._compute: Callable[[LiveKeywordIndex], Calibration] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mine: set[str] = set()  # intent keys of this process's writes, applied when they returned
        self._due = False
        self._poll = poll_seconds if store.kind in ("server", "client") else RECONCILE_SECONDS
        store.on_change(self._on_write)

    @classmethod
    def shared(cls, store: ChunkStore, *, log: logging.Logger | None = None) -> KeywordCache:
        """The process's one cache of the store's collection (per folder), shared by every store attached to it.

        Release it with :meth:`close`; the last user's close stops it.
        """
        folder = keyword_folder(store)
        if folder is None:
            return cls(store, log=log)
        key = str(folder)
        with cls._registry_lock:
            cache = cls._registry.get(key)
            if cache is not None and not cache._stop.is_set():
                cache._attach(store)
                return cache
            cache = cls(store, log=log)
            cache._key = key
            cls._registry[key] = cache
            return cache

    def _attach(self, store: ChunkStore) -> None:
        with self._lock:
            self._users += 1
            if all(s is not store for s in self._stores):
                self._stores.append(store)
                store.on_change(self._on_write)

    @property
    def store(self) -> ChunkStore:
        """The store the cache reads from: the first attached one that is still open."""
        return next((s for s in self._stores if not s.closed), self._stores[0])

    # ------------------------------------------------------------------ opening
    @property
    def folder(self) -> Path | None:
        """The index's folder (a temporary one for an in-memory store), once opened; else where it will be."""
        return self._folder if self._folder is not None else keyword_folder(self.store)

    @property
    def is_applier(self) -> bool:
        """Whether this process applies the journal to the folder (holds its writer)."""
        index = self._index
        return index is not None and index.is_writer

    def index(self) -> LiveKeywordIndex:
        """The index, opened (and built or caught up) on first use.

        Raises:
            StoreError: if the store or the folder cannot be read.
        """
        index = self._index
        if index is not None:
            return index
        with self._lock:
            if self._index is None:
                self._open()
            assert self._index is not None
            return self._index

    def _open(self) -> None:
        folder = keyword_folder(self.store)
        if folder is None:
            self._temp = tempfile.TemporaryDirectory(prefix="shortlist-keyword-")
            folder = Path(self._temp.name)
        self._folder = folder
        self._clear_incompatible(folder)
        try:
            self._index = LiveKeywordIndex.open(folder, writer=True)
        except StoreError:
            if not (folder / _WRITER_LOCK).exists():
                raise
            self._index = self._open_reader(folder)
            self._log.info("Following the keyword index in %s (another process applies the journal)", folder)
        else:
            if self._index.position is None:
                self._build()
            else:
                self._top = self._index.position
                self._restore_final(self._index)
                applied = self._catch_up()
                self._log.info(
                    "Opened the keyword index of %d chunks in %s (%d changed since, applied)",
                    len(self._index),
                    folder,
                    applied,
                )
        self._load_calibration()
        _LIVE.add(self)
        if self.store.kind != "memory":
            self._thread = threading.Thread(target=self._run, name=f"shortlist-keywords-{self.store.name}")
            self._thread.start()

    def _clear_incompatible(self, folder: Path) -> None:
        """Delete an index of another format (another tokeniser version) so that it is built again."""
        if not folder.is_dir() or LiveKeywordIndex.is_compatible(folder):
            return
        if not any(p.name != _WRITER_LOCK for p in folder.iterdir()):
            return
        lock = file_lock(folder / _WRITER_LOCK, timeout=0)
        try:
            lock.acquire()
        except Exception:  # another process holds it: it will clear the folder
            return
        try:
            self._log.info("Rebuilding the keyword index in %s (another format)", folder)
            for p in folder.iterdir():
                if p.name != _WRITER_LOCK:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        finally:
            lock.release()

    def _open_reader(self, folder: Path, timeout: float = 600.0) -> LiveKeywordIndex:
        """Open the folder as a reader, waiting for the applier's first commit if it is still building it."""
        deadline = time.monotonic() + timeout
        while True:
            if LiveKeywordIndex.is_compatible(folder):
                index = LiveKeywordIndex.open(folder)
                if index.position is not None:
                    return index
                index.close()
            if time.monotonic() > deadline:
                msg = f"The keyword index in {folder} was not built by its other process within {timeout:.0f} s."
                raise StoreError(msg)
            time.sleep(0.2)

    def _build(self) -> None:
        """Index every chunk of the store, from the journal's newest entry on (the only O(N) tokenising)."""
        index = self._index
        assert index is not None
        journal = self.store.journal
        start = journal.latest() if journal is not None else None
        t = time.perf_counter()
        n = 0
        for batch in self.store.iter_chunks():
            index.add_terms(
                [c.id for c in batch],
                [tokenize(c.text) for c in batch],
                [text_hash(c.text) for c in batch],
                [c.tokens for c in batch],
            )
            n += len(batch)
        self._top = start or ""
        index.commit(position=self._top, applied=self._final)
        self._log.info("Built the keyword index of %d chunks in %.2fs", n, time.perf_counter() - t)
        if start:
            self._catch_up()  # what was written while the store was read

    # ------------------------------------------------------------------ following the store
    def _on_write(self, ids: Sequence[str], intents: Sequence[str]) -> None:
        """This process wrote ``ids``: apply them now (the applier) so that its next search sees them."""
        index = self._index
        if index is None or not index.is_writer:
            return
        with self._lock:
            self._mine.update(intents)
            self._final.update((key, key_time(key)) for key in intents)
            self._apply(ids)

    def _apply(self, ids: Iterable[str]) -> None:
        """Read ``ids`` from the store; index the ones there, delete the ones gone; commit (lock held)."""
        index = self._index
        assert index is not None
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return
        present: dict[str, tuple[str, int]] = {}
        for start in range(0, len(wanted), _PAGE):
            for c in self.store.get(wanted[start : start + _PAGE]):
                present[c.id] = (c.text, c.tokens)
        if present:
            index.add(list(present), [t for t, _ in present.values()], [n for _, n in present.values()])
        gone = [i for i in wanted if i not in present]
        if gone:
            index.delete(gone)
        index.commit(position=self._resume_key(), applied=self._final)
        self._changed += len(wanted)
        self._maybe_recalibrate()

    def _resume_key(self) -> str:
        """Where a restart re-reads the journal from: the oldest pending intent, else the highest key handled."""
        if self._pending:
            return min(self._pending)
        return self._top or ""

    def _catch_up(self) -> int:
        """Apply the journal entries after the position (lock held). Returns the chunks applied."""
        journal = self.store.journal
        index = self._index
        if journal is None or index is None or not index.is_writer:
            return 0
        since = key_time(self._resume_key()) - SETTLE_MS
        if self._top and time.time() * 1000 - key_time(self._top) > RETENTION_SECONDS * 1000 * 0.9:
            self._log.info("The keyword index of %s is older than the journal keeps: reconciling", self.store.name)
            self._reconcile_ids()
            since = int(time.time() * 1000) - SETTLE_MS
        entries = journal.since(since)
        todo: set[str] = set()
        now = time.monotonic()
        late: list[str] = []
        for entry in entries:
            if entry.key in self._seen or entry.key in self._pending:
                continue
            if entry.kind == DONE:
                self._seen[entry.key] = entry.t
                self._final[entry.key] = entry.t
                self._final.update((key, entry.t) for key in entry.done)
                for key in entry.done:
                    if key in self._mine:  # this process applied it when its write returned
                        self._mine.discard(key)
                        self._pending.pop(key, None)
                        self._remember(key, (), entry.t)
                    elif key in self._pending:
                        ids = self._pending.pop(key)[0]
                        todo.update(ids)
                        self._remember(key, ids, entry.t)
                    elif key in self._intents:
                        todo.update(self._intents[key])
                    else:
                        late.append(key)
            elif entry.key in self._mine:
                self._remember(entry.key, (), entry.t)
            else:
                # Wait for its done, at most PENDING_SECONDS after the write began (the writer's clock).
                age = min(max(time.time() - entry.t / 1000, 0.0), PENDING_SECONDS)
                self._pending[entry.key] = (entry.ids, now + PENDING_SECONDS - age)
                if self._eager:  # a writer that died before this process took over: no need to wait for the
                    todo.update(entry.ids)  # deadline to show what landed (it is applied again then)
        if late:  # dones whose intents came before the window (a restart), or were pruned
            for intent in journal.get(late):
                todo.update(intent.ids)
                self._remember(intent.key, intent.ids, intent.t)
        self._eager = False
        for key, (ids, deadline) in list(self._pending.items()):
            if now >= deadline:  # no done yet: the writer died, or is slow (applying twice is harmless)
                todo.update(ids)
                del self._pending[key]
                self._remember(key, ids, key_time(key))
        if entries:
            self._top = max(self._top or "", entries[-1].key)
        self._forget_old()
        if todo:
            self._apply(todo)
        elif entries and index.position != self._resume_key():
            index.commit(position=self._resume_key(), applied=self._final)
        return len(todo)

    def _remember(self, key: str, ids: tuple[str, ...], t: int) -> None:
        self._seen[key] = t
        self._intents[key] = ids

    def _forget_old(self) -> None:
        horizon = key_time(self._top) - 3 * SETTLE_MS
        for key in [k for k, t in self._seen.items() if t < horizon]:
            del self._seen[key]
            self._intents.pop(key, None)
        for key in [k for k, t in self._final.items() if t < horizon]:
            del self._final[key]

    def _restore_final(self, index: LiveKeywordIndex) -> None:
        """Take the keys the copy's last applier recorded as final: the window read again skips them."""
        for key, t in index.applied().items():
            self._seen[key] = t
            self._final[key] = t
            self._intents.setdefault(key, ())  # a done that closes it later has nothing left to apply

    def _reconcile_ids(self) -> int:
        """Apply the difference between the store's ids and the index's. Returns the ids applied.

        The two listings need not hold the lock (seconds at 1M chunks: 5.7 s for the store's ids against a Chroma
        server, 3.8 s for the index's), so the background check lets this process's writes go on meanwhile; only
        the difference is applied under it. A write between a listing and the lock costs an id read again, never a
        wrong entry: :meth:`_apply` indexes what the store holds at that moment and deletes what it no longer
        holds. (The index's ids come from its current view, a snapshot that searches share.)
        """
        index = self._index
        assert index is not None
        store_ids = set(self.store.ids(page=20_000))
        index_ids = set(index.ids())
        diff = store_ids ^ index_ids
        if not diff:
            return 0
        with self._lock:
            if self._index is not index:  # closed, or another index took over meanwhile: its own check follows
                return 0
            self._log.info("Reconciled the keyword index of %s: %d ids differed", self.store.name, len(diff))
            self._apply(diff)
        return len(diff)

    def _reconcile_texts(self) -> int:
        """Re-index the chunks whose text changed under the same id (lock held). Returns how many."""
        index = self._index
        assert index is not None
        changed: list[str] = []
        for batch in self.store.iter_chunks():
            known = index.text_hashes([c.id for c in batch])
            changed.extend(c.id for c in batch if known.get(c.id) not in (None, 0, text_hash(c.text)))
        if changed:
            self._apply(changed)
        return len(changed)

    def _run(self) -> None:
        """The background thread: follow the journal, reconcile, take over as applier, recalibrate."""
        while not self._stop.wait(self._poll):
            try:
                self._tick()
            except StoreError as exc:  # the server is down: keep the copy, try again at the next tick
                self._log.debug("Keyword index of %s: %s", self.store.name, exc)
            except Exception:  # pragma: no cover - keep following
                self._log.exception("Keyword index of %s: the background step failed", self.store.name)

    def _tick(self) -> None:
        index = self._index
        if index is None:
            return
        if not index.is_writer:
            self._follow()
            return
        compare = False
        with self._lock:
            self._catch_up()
            now = time.monotonic()
            # An embedded folder is this process's alone (the folder lock): after one ids check, a plain client's
            # writes can only show as a count change. Listing every id costs seconds at 1M chunks (and the Python
            # list of a million ids), so it is not repeated every 10 minutes there.
            periodic = self.store.kind != "embedded" or not self._ids_checked
            every = max(IDS_RECONCILE_SECONDS, IDS_CHECK_SHARE * self._ids_check_seconds)
            if periodic and now - self._last_ids_check >= every:
                self._ids_checked = True
                self._last_ids_check = self._last_count_check = now
                compare = True
            elif now - self._last_count_check >= RECONCILE_SECONDS:
                self._last_count_check = now
                if not self._pending and self.store.count() != len(index):
                    self._last_ids_check = now
                    compare = True
        if compare:  # outside the lock: this process's writes and searches go on while the ids are listed
            t = time.monotonic()
            self._reconcile_ids()
            self._ids_check_seconds = time.monotonic() - t
        self._run_calibration_if_due()

    def _follow(self) -> None:
        """A reader: reload when the applier committed; take over when it is gone."""
        index = self._index
        assert index is not None and self._folder is not None
        try:
            writer = LiveKeywordIndex.open(self._folder, writer=True)
        except StoreError:
            try:
                mtime = (self._folder / "shortlist-position.json").stat().st_mtime
            except OSError:
                return
            if mtime != self._position_mtime:
                self._position_mtime = mtime
                index.reload()
            return
        with self._lock:
            self._index = writer
            self._top = writer.position
            self._restore_final(writer)
            self._eager = True
            index.close()
            self._log.info("Took over applying the journal to the keyword index in %s", self._folder)
            self._catch_up()

    def catch_up(self) -> int:
        """Apply the journal now (as the background thread does); returns the chunks applied (0 for a reader)."""
        self.index()
        with self._lock:
            return self._catch_up()

    def refresh(self) -> LiveKeywordIndex:
        """Check the index against the store now: the journal, the ids and every text's hash; return the index.

        This catches writes of plain ``chromadb`` clients at once, same-id rewrites included. A reader (another
        process applies the journal) reloads the applier's last commit instead.
        """
        index = self.index()
        if not index.is_writer:
            index.reload()
            return index
        with self._lock:
            self._catch_up()
            self._reconcile_ids()
            self._reconcile_texts()
            self._last_ids_check = self._last_count_check = time.monotonic()
        assert self._index is not None
        return self._index

    def corpus_tokens(self) -> int:
        """The model tokens of every chunk the copy holds (the store's ``tokens`` metadata, summed by tantivy)."""
        return self.index().token_total()

    @property
    def has_copy(self) -> bool:
        """Whether the copy is open, or saved where it would open without a build (so that reading it is cheap)."""
        if self._index is not None:
            return True
        folder = keyword_folder(self.store)
        return folder is not None and LiveKeywordIndex.is_compatible(folder)

    # ------------------------------------------------------------------ searching
    def search(self, text: str, n: int, allowed: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """The ``n`` best ``(id, bm25)`` pairs, among ``allowed`` ids when given."""
        return self.index().search(text, n, allowed_ids=allowed)

    # ------------------------------------------------------------------ the calibration
    def _state_path(self) -> Path | None:
        folder = self._folder
        return folder / _STATE_FILE if folder is not None else None

    def _load_calibration(self) -> None:
        folder = self._folder
        if folder is None:
            return
        cal = Calibration.load(folder)
        state_path = self._state_path()
        try:
            state = json.loads(state_path.read_text(encoding="utf-8")) if state_path is not None else {}
        except (OSError, ValueError):
            state = {}
        if cal is not None and isinstance(state, dict) and "count" in state:
            self._cal, self._cal_state = cal, state
            self._changed = int(state.get("changed", 0))

    def _stale(self) -> bool:
        """Whether the calibration is missing or the collection changed materially since it was computed."""
        if self._cal is None:
            return True
        base = max(int(self._cal_state.get("count", 0)), 1)
        moved = abs(len(self.index()) - base)
        return self._changed >= MATERIAL_CHANGE * base or moved >= MATERIAL_CHANGE * base

    def calibration(self, compute: Callable[[LiveKeywordIndex], Calibration]) -> Calibration:
        """The calibration, computed now with ``compute(index)`` when missing or stale (see the module)."""
        self._compute = compute
        index = self.index()
        if self._cal_running:  # one is being computed in the background: wait for it rather than compute twice
            self.wait_calibrated(timeout=600.0)
        with self._lock:
            if self._cal is not None and not self._stale():
                return self._cal
            return self._calibrate(index, compute)

    def _halt(self, timeout: float = 10.0) -> None:
        """Stop the background threads: the poll loop, and a calibration at its next search.

        They run native code (Chroma, onnxruntime, tantivy) that must not run on while the interpreter shuts down.
        """
        self._stop.set()
        for thread in (self._thread, self._cal_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=timeout)
        self._thread = None

    def _calibrate(self, index: LiveKeywordIndex, compute: Callable[[LiveKeywordIndex], Calibration]) -> Calibration:
        changed_before = self._changed
        cal = compute(index)
        with self._lock:
            self._cal = cal
            self._changed -= changed_before
            self._cal_state = {"count": len(index), "changed": self._changed, "at": time.time()}
            folder = self._folder
            if folder is not None and index.is_writer:
                try:
                    cal.save(folder)
                    atomic_write(folder / _STATE_FILE, json.dumps(self._cal_state))
                except OSError as exc:
                    self._log.warning("Could not save the hybrid calibration to %s: %s", folder, exc)
        return cal

    def current_calibration(self, compute: Callable[[LiveKeywordIndex], Calibration]) -> Calibration:
        """The calibration for a query: the one there is (the priors when none yet), never computed here.

        When it is missing or stale, one is computed in the background; queries use it once it is there.
        """
        self._compute = compute
        self.index()
        cal = self._cal
        if cal is None or self._stale():
            self._schedule_calibration()
        return cal if cal is not None else Calibration()

    def after_ingest(self, compute: Callable[[LiveKeywordIndex], Calibration]) -> None:
        """An ingest by this process finished: recompute the calibration now if it is missing or stale.

        Only the process that applies the journal to the copy does (it saves the result for every process on the
        copy); another one leaves it to that process, which recalibrates in the background.
        """
        index = self._index
        if index is None or not index.is_writer:
            return
        self.calibration(compute)

    def _maybe_recalibrate(self) -> None:
        if self._stale():
            self._due = True

    def _run_calibration_if_due(self) -> None:
        if self._due and self._compute is not None:
            self._due = False
            self._schedule_calibration()

    def _schedule_calibration(self) -> None:
        compute = self._compute
        if compute is None:
            return
        with self._lock:
            if self._cal_running:
                return
            self._cal_running = True

        def work() -> None:
            try:
                index: Any = _Cancellable(self.index(), self._stop)
                self._calibrate(index, compute)
            except _Cancelled:
                self._log.debug("Background calibration of %s stopped: the cache closed", self.store.name)
            except Exception as exc:  # the old weights (or the priors) stay
                self._log.warning("Background calibration of %s failed: %s", self.store.name, exc)
            finally:
                self._cal_running = False

        # Not a daemon: at exit it is told to stop (see _stop_all) and joined, never cut off inside native code.
        self._cal_thread = threading.Thread(target=work, name=f"shortlist-calibrate-{self.store.name}")
        self._cal_thread.start()

    def wait_calibrated(self, timeout: float = 60.0) -> bool:
        """Wait until no background calibration runs (tests, benchmarks). Returns whether one is there."""
        deadline = time.monotonic() + timeout
        while self._cal_running and time.monotonic() < deadline:
            time.sleep(0.05)
        return self._cal is not None

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Release this user of the cache; the last one stops its thread and lets go of the folder.

        Stopping means: no more listening to the stores, the writer and its lock given back, a temporary folder
        deleted.
        """
        with self._registry_lock:
            self._users -= 1
            if self._users > 0:
                return
            if self._key is not None and self._registry.get(self._key) is self:
                del self._registry[self._key]
        self._halt()
        for store in self._stores:
            store.remove_listener(self._on_write)
        with self._lock:
            index, self._index = self._index, None
            if index is not None:
                index.close()
            if self._temp is not None:
                self._temp.cleanup()
                self._temp = None


class _Cancelled(Exception):
    """A background calibration stopped because its cache closed (or the process is exiting)."""


class _Cancellable:
    """An index whose searches raise :class:`_Cancelled` once ``stop`` is set.

    The checkpoints of a background calibration, which searches once or twice per probe.
    """

    def __init__(self, index: LiveKeywordIndex, stop: threading.Event) -> None:
        self._index = index
        self._stop = stop

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Cancelled

    def search(self, query_text: str, k: int, allowed_ids: Iterable[str] | None = None) -> list[tuple[str, float]]:
        self._check()
        return self._index.search(query_text, k, allowed_ids)

    def score_texts(self, query_text: str, texts: Sequence[str]) -> list[float]:
        self._check()
        return self._index.score_texts(query_text, texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def __len__(self) -> int:
        return len(self._index)

    def guard(self, obj: Any) -> Any:
        """``obj`` (the store, the encoder the calibration uses) with the same checkpoint before each call.

        An encoder's ``embed_documents`` is run in slices of :data:`_GUARD_SLICE` texts, a checkpoint before each,
        so that closing waits for one small batch, not for the calibration's whole embedding work.
        """
        return _Guarded(obj, self._check)


#: Texts per embedding call of a guarded encoder (a background calibration's step between checkpoints).
_GUARD_SLICE = 8


class _Guarded:
    """See :meth:`_Cancellable.guard`."""

    def __init__(self, obj: Any, check: Callable[[], None]) -> None:
        self._obj = obj
        self._check = check

    def embed_documents(self, texts: Sequence[str]) -> Any:
        parts = []
        for start in range(0, len(texts), _GUARD_SLICE):
            self._check()
            parts.append(np.asarray(self._obj.embed_documents(list(texts[start : start + _GUARD_SLICE]))))
        return np.concatenate(parts) if parts else self._obj.embed_documents([])

    def ids(self, **kwargs: Any) -> list[str]:
        out: list[str] = []
        for part in self._obj.iter_ids(**kwargs):  # a store's ids, a checkpoint per page
            self._check()
            out.extend(part)
        return out

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._obj, name)
        if not callable(value):
            return value

        def checked(*args: Any, **kwargs: Any) -> Any:
            self._check()
            return value(*args, **kwargs)

        return checked


#: The open caches, whose threads are told to stop when the main thread ends.
_LIVE: weakref.WeakSet[KeywordCache] = weakref.WeakSet()


def _stop_all() -> None:
    """Tell every cache's threads to stop.

    They are not daemons: Python then joins them (a calibration stops at its next search), so none is cut off
    inside native code (Chroma, onnxruntime, tantivy) at interpreter exit.
    """
    for cache in list(_LIVE):
        cache._stop.set()


# Run when the main thread ends, before Python joins the other threads (what concurrent.futures does); atexit
# would only run after that join, which would then wait for the poll loop forever.
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_stop_all)
else:  # pragma: no cover - every supported Python has it
    atexit.register(_stop_all)
