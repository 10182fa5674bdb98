"""The one place in shortlist that opens Chroma clients (always with telemetry off).

:func:`open_client` opens an embedded database in a folder (``PersistentClient``) or a Chroma server
(``HttpClient``); :func:`memory_client` a private in-memory database; :func:`list_collections` and
:func:`drop_collection` read and change a database's collections without creating a missing folder. The CLI, the
server and the demo use these (through :class:`shortlist.store.ChunkStore`) instead of opening clients of their own.

An embedded folder is held by one process at a time (:mod:`shortlist.store.folder_lock`): :func:`open_client` takes
its lock (shared by every client of the folder in this process) and :func:`close_client` gives it back; a second
process gets a :class:`~shortlist.errors.StoreError` that names the holder's pid and ``chroma run``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shortlist.config import (
    DEFAULT_CHROMA_PORT,
    ChromaServer,
    resolve_chroma_location,
    resolve_chroma_path,
    resolve_chroma_timeout,
)
from shortlist.errors import ConfigError, MissingDependencyError, StoreError
from shortlist.store import folder_lock
from shortlist.store.journal import JOURNAL_SUFFIX, journal_name

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

__all__ = ["close_client", "drop_collection", "list_collections", "memory_client", "open_client"]


def import_chromadb() -> Any:
    """The ``chromadb`` module.

    Raises:
        MissingDependencyError: if it is not installed.
    """
    try:
        import chromadb
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "shortlist's store needs chromadb: `pip install 'chromadb>=1.0'`."
        raise MissingDependencyError(msg) from exc
    return chromadb


def settings() -> Any:
    """Chroma ``Settings`` for every client shortlist opens: no telemetry, no reset."""
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def chroma_errors() -> tuple[type[BaseException], ...]:
    """The exceptions by which Chroma refuses a request (as opposed to failing to reach it)."""
    from chromadb.errors import ChromaError

    return (ChromaError, ValueError, TypeError)


def open_client(path: str | Path | None = None, *, host: str | None = None, port: int | None = None) -> ClientAPI:
    """Open a Chroma client: the one place in shortlist that does (always with telemetry off).

    Args:
        path: Folder of an embedded database (created if missing). Default when ``host`` is not given:
            ``SHORTLIST_CHROMA_PATH``, else ``<SHORTLIST_HOME>/chroma``.
        host: Host of a Chroma server (``chroma run``) instead of a folder.
        port: Port of that server (default 8000).

    Returns:
        A ``chromadb`` ``PersistentClient`` or ``HttpClient``. An embedded folder stays locked to this process until
        every client opened here is given to :func:`close_client` (or the process ends).

    Raises:
        ConfigError: if both ``path`` and ``host`` are given, or ``port`` without ``host``.
        StoreError: if the folder cannot be opened or the server cannot be reached, or another process has the
            folder open (Chroma's embedded mode allows one process; the message says how to use ``chroma run``).
    """
    if path is not None and host is not None:
        msg = "Give only one of 'path' or 'host' for a Chroma client; got both."
        raise ConfigError(msg)
    if port is not None and host is None:
        msg = "'port' needs 'host' (a Chroma server); for an embedded database give 'path'."
        raise ConfigError(msg)
    chromadb = import_chromadb()
    if host is not None:
        server = ChromaServer(host, port or DEFAULT_CHROMA_PORT)
        timeout = resolve_chroma_timeout()
        try:
            _heartbeat(server, timeout)  # bounded: chromadb's client would wait forever on a server that hangs
            client = chromadb.HttpClient(host=host, port=server.port, settings=settings())
        except Exception as exc:
            reason = getattr(exc, "reason", None) or exc
            msg = f"Could not open Chroma at {host}:{server.port}: {reason}. Is the server running?"
            raise StoreError(msg) from exc
        _bound_requests(client, timeout)
        return client  # type: ignore[no-any-return]
    folder = resolve_chroma_path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"Could not open Chroma at {folder}: {exc}. Is the folder writable?"
        raise StoreError(msg) from exc
    key = folder_lock.hold(folder)  # StoreError if another process has it
    try:
        # The resolved path: Chroma shares one System per path string, so "db" and "/abs/db" must be one.
        return chromadb.PersistentClient(path=str(key), settings=settings())  # type: ignore[no-any-return]
    except Exception as exc:
        folder_lock.release(key)
        msg = f"Could not open Chroma at {folder}: {exc}. Is the folder writable?"
        raise StoreError(msg) from exc


def _heartbeat(server: ChromaServer, timeout: float) -> None:
    """Ask the server's heartbeat, within ``timeout`` seconds; any HTTP answer means it is there."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{server.url}/api/v2/heartbeat", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass  # it answered (a proxy or an auth rule in front of it): let chromadb's client say what is wrong


def _bound_requests(client: ClientAPI, timeout: float) -> None:
    """Give the client's HTTP session a timeout (chromadb sets none): a request to a hung server then fails."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is None:  # pragma: no cover - another chromadb layout: its own (unbounded) behaviour
        return
    import httpx

    session.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))


def close_client(client: ClientAPI, path: str | Path | None = None) -> None:
    """Close a client from :func:`open_client`; for an embedded folder (``path``), let this process's hold go.

    Chroma stops the folder's shared ``System`` when its last client closes; the folder's lock goes with this
    process's last client, so another process may then open it. Call it once per client:
    :meth:`ChunkStore.close() <shortlist.store.ChunkStore.close>` makes sure of that.

    Args:
        client: The client.
        path: The embedded folder it was opened on (``None`` for a server client).
    """
    try:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    finally:
        if path is not None:
            folder_lock.release(path)


@contextlib.contextmanager
def existing_client(path: str | Path | None, host: str | None, port: int | None) -> Iterator[ClientAPI | None]:
    """A client for an existing database, closed after the block (an embedded folder's hold with it).

    Yields ``None`` for an embedded folder that is missing or empty (it is not created). With neither ``path`` nor
    ``host``: the default database (:func:`~shortlist.config.resolve_chroma_location`: ``SHORTLIST_CHROMA_URL``
    first).
    """
    if path is None and host is None:
        where = resolve_chroma_location()
        if isinstance(where, ChromaServer):
            host, port = where.host, where.port
    folder = resolve_chroma_path(path) if host is None else None
    if folder is not None and not is_database(folder):
        yield None
        return
    client = open_client(folder) if folder is not None else open_client(host=host, port=port)
    try:
        yield client
    finally:
        close_client(client, folder)


def is_database(folder: Path) -> bool:
    """Whether ``folder`` holds an embedded database: it exists and has more than shortlist's lock file."""
    return folder.is_dir() and any(p.name != folder_lock.LOCK_FILE for p in folder.iterdir())


def memory_client() -> ClientAPI:
    """A client of a new in-memory Chroma database of its own (two such clients never share collections).

    Raises:
        StoreError: if Chroma cannot create the database.
    """
    chromadb = import_chromadb()
    database = f"shortlist-mem-{uuid.uuid4().hex}"
    try:
        chromadb.AdminClient(settings()).create_database(database)
        return chromadb.EphemeralClient(settings=settings(), database=database)  # type: ignore[no-any-return]
    except Exception as exc:
        msg = f"Could not create an in-memory Chroma database: {exc}"
        raise StoreError(msg) from exc


def list_collections(
    *, path: str | Path | None = None, host: str | None = None, port: int | None = None
) -> dict[str, int]:
    """The collections of a Chroma database with their chunk counts, sorted by name.

    An embedded folder that does not exist (or is empty) has none, and is not created.

    Args:
        path: Folder of an embedded database (default as for :func:`open_client`).
        host: Host of a Chroma server instead.
        port: Port of that server (default 8000).

    Returns:
        ``{name: count}``; empty when there is no database yet.

    Raises:
        ConfigError: for both ``path`` and ``host``, or ``port`` without ``host``.
        StoreError: if Chroma cannot be opened or read.
    """
    if path is not None and host is not None:
        msg = "Give only one of 'path' or 'host' for a Chroma client; got both."
        raise ConfigError(msg)
    with existing_client(path, host, port) as client:
        if client is None:
            return {}
        sizes: dict[str, int] = {}
        try:
            for col in client.list_collections():
                name = col if isinstance(col, str) else col.name
                if name.endswith(JOURNAL_SUFFIX):  # shortlist's change journals are not collections of chunks
                    continue
                sizes[name] = client.get_collection(name, embedding_function=None).count()
        except Exception as exc:
            msg = f"Chroma could not list its collections: {exc}"
            raise StoreError(msg) from exc
    return dict(sorted(sizes.items()))


def drop_collection(
    name: str, *, path: str | Path | None = None, host: str | None = None, port: int | None = None
) -> bool:
    """Delete a whole collection (its chunks, vectors and metadata) if it exists.

    Args:
        name: The collection.
        path: Folder of an embedded database (default as for :func:`open_client`; a missing folder is not
            created).
        host: Host of a Chroma server instead.
        port: Port of that server (default 8000).

    Returns:
        Whether a collection was deleted.

    Raises:
        StoreError: if Chroma cannot be opened or refuses.
    """
    with existing_client(path, host, port) as client:
        if client is None:
            return False
        try:
            names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
            if name not in names:
                return False
            client.delete_collection(name)
            if journal_name(name) in names:
                client.delete_collection(journal_name(name))
        except Exception as exc:
            msg = f"Chroma could not delete collection {name!r}: {exc}"
            raise StoreError(msg) from exc
    return True
