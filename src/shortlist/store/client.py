"""The one place in shortlist that opens Chroma clients (always with telemetry off).

:func:`open_client` opens an embedded database in a folder (``PersistentClient``) or a Chroma server
(``HttpClient``); :func:`memory_client` a private in-memory database; :func:`list_collections` and
:func:`drop_collection` read and change a database's collections without creating a missing folder. The CLI, the
server and the demo use these (through :class:`shortlist.store.ChunkStore`) instead of opening clients of their own.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shortlist.config import DEFAULT_CHROMA_PORT, resolve_chroma_path
from shortlist.errors import ConfigError, MissingDependencyError, StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

__all__ = ["drop_collection", "list_collections", "memory_client", "open_client"]


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
        A ``chromadb`` ``PersistentClient`` or ``HttpClient``.

    Raises:
        ConfigError: if both ``path`` and ``host`` are given, or ``port`` without ``host``.
        StoreError: if the folder cannot be opened or the server cannot be reached.
    """
    if path is not None and host is not None:
        msg = "Give only one of 'path' or 'host' for a Chroma client; got both."
        raise ConfigError(msg)
    if port is not None and host is None:
        msg = "'port' needs 'host' (a Chroma server); for an embedded database give 'path'."
        raise ConfigError(msg)
    chromadb = import_chromadb()
    folder: Path | None = None
    try:
        if host is not None:
            return chromadb.HttpClient(host=host, port=port or DEFAULT_CHROMA_PORT, settings=settings())  # type: ignore[no-any-return]
        folder = resolve_chroma_path(path)
        folder.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(folder), settings=settings())  # type: ignore[no-any-return]
    except Exception as exc:
        where = (
            f"{host}:{port or DEFAULT_CHROMA_PORT}" if host is not None else str(folder if folder is not None else path)
        )
        msg = f"Could not open Chroma at {where}: {exc}. Is the folder writable / the server running?"
        raise StoreError(msg) from exc


def existing_client(path: str | Path | None, host: str | None, port: int | None) -> ClientAPI | None:
    """A client for an existing database; ``None`` for an embedded folder that is missing or empty (not created)."""
    if host is None:
        folder = resolve_chroma_path(path)
        if not folder.is_dir() or not any(folder.iterdir()):
            return None
        return open_client(folder)
    return open_client(host=host, port=port)


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
    client = existing_client(path, host, port)
    if client is None:
        return {}
    sizes: dict[str, int] = {}
    try:
        for col in client.list_collections():
            name = col if isinstance(col, str) else col.name
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
    client = existing_client(path, host, port)
    if client is None:
        return False
    try:
        names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
        if name not in names:
            return False
        client.delete_collection(name)
    except Exception as exc:
        msg = f"Chroma could not delete collection {name!r}: {exc}"
        raise StoreError(msg) from exc
    return True
