"""ChunkStore: text chunks, their vectors and metadata in one Chroma collection.

Where the collection lives (exactly one of these; the code path is the same for all):

- an embedded database in a folder (Chroma ``PersistentClient``), the default: ``path`` or ``SHORTLIST_CHROMA_PATH``
  or ``<SHORTLIST_HOME>/chroma``;
- a Chroma server (``chroma run``; ``HttpClient(host, port)``);
- memory only (:meth:`ChunkStore.in_memory`), each store in its own private Chroma database, for tests and
  notebooks;
- any Chroma client you built yourself (``client=``).

What the collection records: it is created with the cosine space, and its metadata holds the model name, the vector
dimension and the normalisation (``shortlist:model``, ``shortlist:dimension``, ``shortlist:normalized``). Opening it
with an encoder of another model or dimension raises :class:`~shortlist.errors.EmbeddingModelMismatchError`:
vectors of two models are never mixed.

Ids are stable: :func:`chunk_id` hashes (source id, chunk index, text), so writing the same chunk twice changes
nothing.

Metadata in Chroma: each chunk carries ``source`` (its document's id) and ``chunk`` (its index in the document), plus
the user's metadata. Chroma 1.x stores ``str``, ``int``, ``float``, ``bool`` and non-empty lists of one of those
types. Everything else that JSON can express (``None``, nested dicts, empty or mixed lists, tuples of mixed
types) is stored as a JSON string and its key listed in the reserved key ``_sl_json``; reading restores the value
exactly (a tuple comes back as a list). NumPy scalars and arrays become Python numbers and lists. Values JSON cannot
express (dates, bytes, sets, objects) are refused with :class:`~shortlist.errors.InputError` before anything is
written: convert them to ``str`` first. Keys starting with ``_sl_`` or ``chroma:`` are reserved. A user key
``chunk`` (or a ``source`` that differs from the document id) is kept under ``original_chunk`` (``original_source``).
Filters (``where``) work on natively stored values; a JSON-encoded value can only be matched as its JSON string.

Example:
    ```python
    from shortlist import ChunkStore, Encoder

    store = ChunkStore.in_memory("demo")
    print(store.count(), store.model_name, store.dimension)
    # 0 sentence-transformers/all-MiniLM-L6-v2 384
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from shortlist.config import resolve_chroma_path
from shortlist.errors import (
    ConfigError,
    EmbeddingModelMismatchError,
    InputError,
    MissingDependencyError,
    StoreError,
)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from shortlist.encoder import Encoder

__all__ = [
    "INTERNAL_KEYS",
    "RESERVED_KEYS",
    "ChunkRecord",
    "ChunkStore",
    "StoredChunk",
    "chunk_id",
    "open_client",
    "restore_metadata",
    "sanitize_metadata",
]

logger = logging.getLogger(__name__)

#: Keys shortlist adds to every chunk and returns in :attr:`shortlist.types.Hit.metadata`.
RESERVED_KEYS = ("source", "chunk")
KEY_SOURCE = "source"
KEY_CHUNK = "chunk"
#: Metadata key of a document's title (repeated at the head of each chunk by the pre-filter).
KEY_TITLE = "title"
KEY_TOKENS = "_sl_tokens"
KEY_JSON = "_sl_json"
#: Keys shortlist keeps for itself in Chroma and never returns.
INTERNAL_KEYS = (KEY_TOKENS, KEY_JSON)

META_MODEL = "shortlist:model"
META_DIMENSION = "shortlist:dimension"
META_NORMALIZED = "shortlist:normalized"
META_FIELDS = "shortlist:fields"
META_VERSION = "shortlist:version"
STORE_VERSION = 1

DEFAULT_COLLECTION = "shortlist"
_FILTER_OPERATORS = ("$and", "$or")
_READ_PAGE = 2000  # rows per read: Chroma's SQLite refuses very large IN lists ("too many SQL variables")


def chunk_id(source: str, index: int, text: str) -> str:
    """The stable id of a chunk: a hash of its document's id, its index in the document and its text.

    Returns:
        32 hexadecimal characters (128 bits of SHA-256).
    """
    digest = hashlib.sha256(f"{source}\x1f{index}\x1f{text}".encode()).hexdigest()
    return digest[:32]


# ---------------------------------------------------------------------------------------------- metadata
def _native(value: Any) -> Any:
    """NumPy scalars and arrays to Python; tuples to lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [_native(v) for v in value]
    return value


def _chroma_native(value: Any) -> bool:
    if isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list) and value:
        first = type(value[0])
        if first not in (str, int, float, bool):
            return False
        return all(type(v) is first for v in value) and all(not isinstance(v, float) or math.isfinite(v) for v in value)
    return False


def sanitize_metadata(metadata: Mapping[str, Any] | None, *, where: str = "metadata") -> dict[str, Any]:
    """Turn user metadata into what Chroma stores, reversibly (see the module docstring).

    Args:
        metadata: The user's metadata (``None`` is the same as ``{}``).
        where: How to name this metadata in an error message (e.g. ``"documents[3].metadata"``).

    Returns:
        A new dict with Chroma-native values; JSON-encoded keys are listed under ``_sl_json``.

    Raises:
        InputError: for a key that is not a non-empty ``str``, a reserved key, or a value JSON cannot express.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        msg = f"{where} must be a dict, got {type(metadata).__name__}."
        raise InputError(msg)
    out: dict[str, Any] = {}
    encoded: list[str] = []
    for key, raw in metadata.items():
        if not isinstance(key, str) or not key:
            msg = f"{where} has key {key!r}: metadata keys must be non-empty strings."
            raise InputError(msg)
        if key.startswith(("_sl_", "chroma:")):
            msg = f"{where} has key {key!r}: keys starting with '_sl_' or 'chroma:' are reserved; rename it."
            raise InputError(msg)
        value = _native(raw)
        if isinstance(value, list):
            value = [_native(v) for v in value]
        if _chroma_native(value):
            out[key] = value
            continue
        try:
            out[key] = json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=False, default=_refuse)
        except (TypeError, ValueError) as exc:
            msg = (
                f"{where}[{key!r}] is a {type(raw).__name__} ({raw!r:.60}), which shortlist cannot store: use str, "
                f"int, float, bool, None, or lists and dicts of those (convert dates to ISO strings). ({exc})"
            )
            raise InputError(msg) from exc
        encoded.append(key)
    if encoded:
        out[KEY_JSON] = encoded
    return out


def _refuse(value: Any) -> Any:
    value = _native(value)
    if isinstance(value, list):
        return value
    msg = f"{type(value).__name__} is not JSON serialisable"
    raise TypeError(msg)


def restore_metadata(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """Undo :func:`sanitize_metadata`: JSON-encoded values are decoded and internal keys dropped."""
    if not stored:
        return {}
    encoded = stored.get(KEY_JSON) or []
    if isinstance(encoded, str):
        encoded = [encoded]
    out: dict[str, Any] = {}
    # The user's keys first, then ``source`` and ``chunk``, whatever order Chroma returns them in.
    rank = {KEY_SOURCE: 1, KEY_CHUNK: 2}
    ordered = sorted(stored.items(), key=lambda item: rank.get(item[0], 0))
    for key, value in ordered:
        if key in INTERNAL_KEYS:
            continue
        if key in encoded and isinstance(value, str):
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ChunkRecord:
    """A chunk to write: its text, document id, index and the user's metadata (not yet sanitised).

    Attributes:
        source: The document's id.
        chunk: 0-based index of the chunk in its document.
        text: The chunk's text (already cleaned and split).
        tokens: Word pieces in ``text`` (for the corpus's token count and token budgets).
        metadata: The user's metadata for the document.
        id: The stable id; computed with :func:`chunk_id` when empty.
    """

    source: str
    chunk: int
    text: str
    tokens: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            msg = f"ChunkRecord.source must be a non-empty str, got {self.source!r}."
            raise InputError(msg)
        if not isinstance(self.text, str) or not self.text.strip():
            msg = f"ChunkRecord.text must be a non-empty str (chunk {self.chunk} of {self.source!r})."
            raise InputError(msg)
        if not self.id:
            object.__setattr__(self, "id", chunk_id(self.source, self.chunk, self.text))

    def chroma_metadata(self) -> dict[str, Any]:
        """The metadata as stored in Chroma: the user's (sanitised), ``source``, ``chunk`` and the token count."""
        user = dict(self.metadata)
        if KEY_SOURCE in user and user[KEY_SOURCE] != self.source:
            user["original_source"] = user.pop(KEY_SOURCE)
        else:
            user.pop(KEY_SOURCE, None)
        if KEY_CHUNK in user:
            user["original_chunk"] = user.pop(KEY_CHUNK)
        out = sanitize_metadata(user, where=f"metadata of document {self.source!r}")
        out[KEY_SOURCE] = self.source
        out[KEY_CHUNK] = int(self.chunk)
        out[KEY_TOKENS] = int(self.tokens)
        return out


@dataclass(frozen=True)
class StoredChunk:
    """A chunk read back from the store.

    Attributes:
        id: The chunk's id.
        text: Its text.
        metadata: The user's metadata restored, plus ``source`` and ``chunk``.
        tokens: Its word-piece count as recorded at ingest.
        score: Cosine similarity to the query (``None`` when read without a query).
        embedding: Its stored vector, when asked for.
    """

    id: str
    text: str
    metadata: Mapping[str, Any]
    tokens: int = 0
    score: float | None = None
    embedding: NDArray[np.float32] | None = None

    @property
    def source(self) -> str:
        """The id of the chunk's document."""
        return str(self.metadata.get(KEY_SOURCE, ""))


def _stored(
    id_: str, text: str | None, meta: Mapping[str, Any] | None, score: float | None, emb: Any = None
) -> StoredChunk:
    tokens = int((meta or {}).get(KEY_TOKENS, 0) or 0)
    vector = None if emb is None else np.asarray(emb, dtype=np.float32)
    return StoredChunk(id_, text or "", restore_metadata(meta), tokens, score, vector)


# ---------------------------------------------------------------------------------------------- the store
def _import_chromadb() -> Any:
    try:
        import chromadb
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "shortlist's store needs chromadb: `pip install 'chromadb>=1.0'`."
        raise MissingDependencyError(msg) from exc
    return chromadb


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


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
    chromadb = _import_chromadb()
    folder: Path | None = None
    try:
        if host is not None:
            return chromadb.HttpClient(host=host, port=port or 8000, settings=_settings())  # type: ignore[no-any-return]
        folder = resolve_chroma_path(path)
        folder.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(folder), settings=_settings())  # type: ignore[no-any-return]
    except Exception as exc:
        where = f"{host}:{port or 8000}" if host is not None else str(folder if folder is not None else path)
        msg = f"Could not open Chroma at {where}: {exc}. Is the folder writable / the server running?"
        raise StoreError(msg) from exc


def _existing_client(path: str | Path | None, host: str | None, port: int | None) -> ClientAPI | None:
    """A client for an existing database; ``None`` for an embedded folder that is missing or empty (not created)."""
    if host is None:
        folder = resolve_chroma_path(path)
        if not folder.is_dir() or not any(folder.iterdir()):
            return None
        return open_client(folder)
    return open_client(host=host, port=port)


def _chroma_errors() -> tuple[type[BaseException], ...]:
    from chromadb.errors import ChromaError

    return (ChromaError, ValueError, TypeError)


class ChunkStore:
    """Chunks of text with their vectors and metadata in one Chroma collection (cosine space).

    Args:
        collection: The collection's name (3-512 characters of ``[a-zA-Z0-9._-]``). Default ``"shortlist"``.
        path: Folder of an embedded database. Default (when neither ``host`` nor ``client`` is given):
            ``SHORTLIST_CHROMA_PATH``, else ``<SHORTLIST_HOME>/chroma``.
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
        elif host is not None:
            self.client = open_client(host=host, port=port)
            self.kind = "server"
        else:
            self.path = resolve_chroma_path(path)
            self.client = open_client(self.path)
            self.kind = "embedded"
        self.name = collection
        self._lock = threading.RLock()
        self._fields: set[str] | None = None
        self._corpus_tokens: int | None = None
        self._count_cache: tuple[int, float] | None = None
        self.collection: Collection = self._open_collection(collection)
        try:
            self.max_batch_size = int(self.client.get_max_batch_size())
        except Exception:  # pragma: no cover - every 1.x client has it
            self.max_batch_size = 5000
        if self.max_batch_size <= 0:
            self.max_batch_size = 5000

    @classmethod
    def in_memory(cls, collection: str = DEFAULT_COLLECTION, *, encoder: Encoder | None = None) -> ChunkStore:
        """A store in memory only, in a private Chroma database of its own (two in-memory stores never share).

        Raises:
            StoreError: if Chroma cannot create the database.
        """
        chromadb = _import_chromadb()
        database = f"shortlist-mem-{uuid.uuid4().hex}"
        try:
            chromadb.AdminClient(_settings()).create_database(database)
            client = chromadb.EphemeralClient(settings=_settings(), database=database)
        except Exception as exc:
            msg = f"Could not create an in-memory Chroma database: {exc}"
            raise StoreError(msg) from exc
        store = cls(collection, client=client, encoder=encoder)
        store.kind = "memory"
        return store

    @staticmethod
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
        client = _existing_client(path, host, port)
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

    @staticmethod
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
        client = _existing_client(path, host, port)
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

    # ------------------------------------------------------------------ opening
    def _expected_metadata(self) -> dict[str, Any]:
        return {
            META_MODEL: self.model_name,
            META_DIMENSION: self.dimension,
            META_NORMALIZED: True,
            META_VERSION: STORE_VERSION,
        }

    def _open_collection(self, name: str) -> Collection:
        try:
            col = self.client.get_or_create_collection(
                name,
                metadata=self._expected_metadata(),
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        except _chroma_errors() as exc:
            msg = f"Chroma refused to open collection {name!r}: {exc}"
            raise (ConfigError(msg) if "name" in str(exc).lower() else StoreError(msg)) from exc
        except Exception as exc:
            msg = f"Could not reach Chroma to open collection {name!r}: {exc}"
            raise StoreError(msg) from exc
        meta = dict(col.metadata or {})
        if META_MODEL not in meta:
            if col.count() > 0:
                msg = (
                    f"Collection {name!r} was not created by shortlist (its metadata does not record a model), and "
                    "it holds vectors of an unknown model. Use another collection name."
                )
                raise EmbeddingModelMismatchError(msg)
            col.modify(metadata={**meta, **self._expected_metadata()})
            meta = dict(col.metadata or {})
        stored_model, stored_dim = meta.get(META_MODEL), meta.get(META_DIMENSION)
        if stored_model != self.model_name or stored_dim != self.dimension:
            msg = (
                f"Collection {name!r} holds vectors of {stored_model!r} (dimension {stored_dim}), but this encoder is "
                f"{self.model_name!r} (dimension {self.dimension}). shortlist never mixes two models: open it with "
                "that model, or use another collection name."
            )
            raise EmbeddingModelMismatchError(msg)
        space = _space_of(col)
        if space not in (None, "cosine"):
            msg = f"Collection {name!r} uses the {space!r} space; shortlist needs 'cosine'. Use another collection."
            raise EmbeddingModelMismatchError(msg)
        return col

    # ------------------------------------------------------------------ facts
    def count(self, *, max_age: float = 0.0) -> int:
        """Number of chunks in the collection.

        Args:
            max_age: Accept a count read at most this many seconds ago (default 0: ask Chroma now). Chroma counts
                by scanning, which costs milliseconds at 100k chunks; searches use a recent count. This store's
                own writes always refresh it.
        """
        if max_age > 0:
            cached = self._count_cache
            if cached is not None and time.monotonic() - cached[1] <= max_age:
                return cached[0]
        try:
            n = int(self.collection.count())
        except Exception as exc:
            msg = f"Chroma could not count collection {self.name!r}: {exc}"
            raise StoreError(msg) from exc
        self._count_cache = (n, time.monotonic())
        return n

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        where = {"embedded": str(self.path), "server": f"{self.host}:{self.port or 8000}"}.get(self.kind, self.kind)
        return f"ChunkStore({self.name!r}, {where}, model={self.model_name!r})"

    def corpus_tokens(self) -> int:
        """Word pieces in all chunks of the collection (read once, then kept up to date by this store's writes)."""
        with self._lock:
            if self._corpus_tokens is None:
                total = 0
                for batch in self.iter_chunks(include_text=False):
                    total += sum(c.tokens for c in batch)
                self._corpus_tokens = total
            return self._corpus_tokens

    def fields(self) -> set[str]:
        """Metadata keys that chunks of this collection carry (``source`` and ``chunk`` always)."""
        with self._lock:
            if self._fields is None:
                self._fields = self._read_fields()
            return set(self._fields)

    def _read_fields(self) -> set[str]:
        try:
            meta = self.client.get_collection(self.name, embedding_function=None).metadata or {}
        except Exception:
            meta = self.collection.metadata or {}
        raw = meta.get(META_FIELDS)
        names: set[str] = set(RESERVED_KEYS)
        if isinstance(raw, str):
            try:
                names.update(json.loads(raw))
            except ValueError:
                pass
        return names

    def _record_fields(self, keys: set[str]) -> None:
        keys = keys - set(INTERNAL_KEYS)
        known = self.fields()
        if keys <= known:
            return
        current = self._read_fields()  # another process may have added some
        merged = sorted(current | known | keys)
        meta = dict(self.client.get_collection(self.name, embedding_function=None).metadata or {})
        meta[META_FIELDS] = json.dumps(merged)
        meta.pop("hnsw:space", None)
        self.collection.modify(metadata=meta)
        self._fields = set(merged)

    # ------------------------------------------------------------------ writing
    def _check_vectors(self, embeddings: Any, n: int) -> NDArray[np.float32]:
        try:
            vectors = np.asarray(embeddings, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            msg = f"embeddings must be a 2-D array of numbers: {exc}"
            raise InputError(msg) from exc
        if vectors.ndim != 2 or vectors.shape[0] != n:
            msg = f"embeddings must have shape ({n}, {self.dimension}), got {vectors.shape}."
            raise InputError(msg)
        if vectors.shape[1] != self.dimension:
            msg = (
                f"Vectors of dimension {vectors.shape[1]} do not fit collection {self.name!r} (dimension "
                f"{self.dimension}, model {self.model_name!r}). Embed with that model."
            )
            raise EmbeddingModelMismatchError(msg)
        if not np.all(np.isfinite(vectors)):
            msg = "embeddings contain NaN or infinite values."
            raise InputError(msg)
        return vectors

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
        with self._lock:
            previous = self._tokens_of(ids) if self._corpus_tokens is not None else {}
            self._record_fields({k for m in metas for k in m})
            step = self.max_batch_size
            for start in range(0, len(ids), step):
                end = start + step
                try:
                    self.collection.upsert(
                        ids=ids[start:end],
                        embeddings=vecs[start:end],
                        documents=docs[start:end],
                        metadatas=metas[start:end],  # type: ignore[arg-type]
                    )
                except Exception as exc:
                    self._corpus_tokens = None  # recount on next use
                    msg = f"Chroma refused to write {end - start} chunks to {self.name!r}: {exc}"
                    raise StoreError(msg) from exc
            self._count_cache = None
            if self._corpus_tokens is not None:
                self._corpus_tokens += sum(int(m[KEY_TOKENS]) for m in metas) - sum(previous.values())
        return len(ids)

    def update_metadata(self, records: Sequence[ChunkRecord]) -> int:
        """Rewrite the metadata of stored chunks (without touching their vectors). Returns how many."""
        if not records:
            return 0
        metas = [r.chroma_metadata() for r in records]
        ids = [r.id for r in records]
        with self._lock:
            self._record_fields({k for m in metas for k in m})
            for start in range(0, len(ids), self.max_batch_size):
                end = start + self.max_batch_size
                try:
                    self.collection.update(ids=ids[start:end], metadatas=metas[start:end])  # type: ignore[arg-type]
                except Exception as exc:
                    msg = f"Chroma refused to update metadata in {self.name!r}: {exc}"
                    raise StoreError(msg) from exc
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
        with self._lock:
            if ids is not None:
                ids = list(ids)
                if not ids:
                    return 0
                targets = [c.id for c in self.get(ids, where=filt, include_text=False)]
            else:
                targets = [c.id for batch in self.iter_chunks(where=filt, include_text=False) for c in batch]
            if not targets:
                return 0
            tokens = self._tokens_of(targets) if self._corpus_tokens is not None else {}
            for start in range(0, len(targets), _READ_PAGE):
                try:
                    self.collection.delete(ids=targets[start : start + _READ_PAGE])
                except Exception as exc:
                    self._corpus_tokens = None
                    msg = f"Chroma refused to delete from {self.name!r}: {exc}"
                    raise StoreError(msg) from exc
            self._count_cache = None
            if self._corpus_tokens is not None:
                self._corpus_tokens -= sum(tokens.values())
        return len(targets)

    def _tokens_of(self, ids: Sequence[str]) -> dict[str, int]:
        return {c.id: c.tokens for c in self.get(ids, include_text=False)}

    # ------------------------------------------------------------------ reading
    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` already stored."""
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _READ_PAGE):
            res = self._get(ids=wanted[start : start + _READ_PAGE], include=[])
            found.update(res["ids"])
        return found

    def ids_of_sources(self, sources: Sequence[str]) -> set[str]:
        """Ids of every stored chunk whose document is one of ``sources``."""
        out: set[str] = set()
        unique = list(dict.fromkeys(sources))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            filt = {KEY_SOURCE: {"$in": part}} if len(part) > 1 else {KEY_SOURCE: part[0]}
            out.update(c.id for batch in self.iter_chunks(where=filt, include_text=False) for c in batch)
        return out

    def _get(self, **kwargs: Any) -> Any:
        try:
            return self.collection.get(**kwargs)
        except ValueError as exc:
            msg = f"Invalid request to collection {self.name!r}: {exc}"
            raise InputError(msg) from exc
        except Exception as exc:
            msg = f"Chroma could not read collection {self.name!r}: {exc}"
            raise StoreError(msg) from exc

    def get(
        self,
        ids: Sequence[str],
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include_text: bool = True,
        include_embeddings: bool = False,
    ) -> list[StoredChunk]:
        """Read chunks by id (those not stored, or not matching the filters, are left out), in the order given."""
        include = (
            ["metadatas"] + (["documents"] if include_text else []) + (["embeddings"] if include_embeddings else [])
        )
        found: dict[str, StoredChunk] = {}
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), _READ_PAGE):
            res = self._get(
                ids=wanted[start : start + _READ_PAGE],
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,
                include=include,
            )
            docs = res.get("documents") or [None] * len(res["ids"])
            embs = res.get("embeddings")
            if embs is None:
                embs = [None] * len(res["ids"])
            for i, id_ in enumerate(res["ids"]):
                found[id_] = _stored(id_, docs[i], res["metadatas"][i], None, embs[i])
        return [found[i] for i in wanted if i in found]

    def iter_ids(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        page: int = _READ_PAGE,
    ) -> Iterator[list[str]]:
        """The ids of every stored chunk (matching the filters), a page at a time, in Chroma's order.

        Args:
            where: A metadata filter (Chroma syntax), or ``None`` for all chunks.
            where_document: A filter on the text (``{"$contains": "..."}``), or ``None``.
            page: Ids per page (per request to Chroma).

        Yields:
            Lists of at most ``page`` ids.

        Raises:
            InputError: for a filter Chroma refuses.
            StoreError: if Chroma cannot be read.
        """
        offset = 0
        while True:
            res = self._get(
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,
                include=[],
                limit=page,
                offset=offset,
            )
            found = list(res["ids"])
            if found:
                yield found
            if len(found) < page:
                return
            offset += len(found)

    def ids(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        page: int = _READ_PAGE,
    ) -> list[str]:
        """The ids of every stored chunk (matching the filters), in Chroma's order (see :meth:`iter_ids`)."""
        return [id_ for part in self.iter_ids(where=where, where_document=where_document, page=page) for id_ in part]

    def iter_chunks(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include_text: bool = True,
        include_embeddings: bool = False,
        page: int = _READ_PAGE,
    ) -> Iterator[list[StoredChunk]]:
        """Read every chunk (matching ``where`` and ``where_document``), a page at a time."""
        include = (
            ["metadatas"] + (["documents"] if include_text else []) + (["embeddings"] if include_embeddings else [])
        )
        offset = 0
        while True:
            res = self._get(
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,
                include=include,
                limit=page,
                offset=offset,
            )
            n = len(res["ids"])
            if n == 0:
                return
            docs = res.get("documents") or [None] * n
            embs = res.get("embeddings")
            if embs is None:
                embs = [None] * n
            yield [_stored(res["ids"][i], docs[i], res["metadatas"][i], None, embs[i]) for i in range(n)]
            if n < page:
                return
            offset += n

    def query(
        self,
        vector: Any,
        n: int,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include_embeddings: bool = False,
    ) -> list[StoredChunk]:
        """The ``n`` chunks nearest to ``vector`` (by Chroma's HNSW index), best first, with cosine scores.

        Raises:
            InputError: for a vector of the wrong shape or a bad filter.
            EmbeddingModelMismatchError: for a vector of another dimension.
            StoreError: if Chroma fails.
        """
        vec = self._check_vectors(np.asarray(vector, dtype=np.float32).reshape(1, -1), 1)
        if where is not None:
            self.check_where(where)
        if n <= 0:
            return []
        include = ["metadatas", "documents", "distances"] + (["embeddings"] if include_embeddings else [])
        try:
            res: Any = self.collection.query(
                query_embeddings=vec,
                n_results=int(n),
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,  # type: ignore[arg-type]
                include=include,  # type: ignore[arg-type]
            )
        except ValueError as exc:
            msg = f"Invalid query filter for collection {self.name!r}: {exc}"
            raise InputError(msg) from exc
        except Exception as exc:
            msg = f"Chroma could not query collection {self.name!r}: {exc}"
            raise StoreError(msg) from exc
        ids = res["ids"][0]
        dists = res["distances"][0] if res.get("distances") else [1.0] * len(ids)
        docs = res["documents"][0] if res.get("documents") else [None] * len(ids)
        metas = res["metadatas"][0] if res.get("metadatas") else [None] * len(ids)
        embs = res.get("embeddings")
        emb_list = embs[0] if embs is not None else [None] * len(ids)
        # Chroma's cosine distance is 1 - cosine similarity: convert back exactly once, here.
        return [_stored(ids[i], docs[i], metas[i], float(1.0 - dists[i]), emb_list[i]) for i in range(len(ids))]

    # ------------------------------------------------------------------ filters
    def check_where(self, where: Mapping[str, Any]) -> None:
        """Check a metadata filter before Chroma sees it.

        Raises:
            InputError: if it is not valid Chroma syntax, or names a field no chunk in the collection has (Chroma
                would silently match nothing); the message lists the known fields.
        """
        if not isinstance(where, Mapping) or not where:
            msg = f"where must be a non-empty dict like {{'lang': 'en'}}, got {where!r}."
            raise InputError(msg)
        try:
            from chromadb.api.types import validate_where

            validate_where(dict(where))
        except ValueError as exc:
            msg = f"Invalid where filter {dict(where)!r}: {exc}"
            raise InputError(msg) from exc
        unknown = sorted(_where_fields(where) - self.fields())
        if unknown:
            with self._lock:
                self._fields = None  # another writer may have added fields: read again before refusing
            unknown = sorted(_where_fields(where) - self.fields())
        if unknown:
            known = ", ".join(sorted(self.fields() - set(INTERNAL_KEYS)))
            msg = (
                f"where filters on {', '.join(map(repr, unknown))}, which no chunk in collection {self.name!r} "
                f"has. Known fields: {known}."
            )
            raise InputError(msg)


def _include(text: bool, embeddings: bool) -> list[str]:
    return ["metadatas"] + (["documents"] if text else []) + (["embeddings"] if embeddings else [])


def _where_fields(where: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for key, value in where.items():
        if key in _FILTER_OPERATORS and isinstance(value, list):
            for sub in value:
                if isinstance(sub, Mapping):
                    out |= _where_fields(sub)
        elif not key.startswith("$"):
            out.add(key)
    return out


def _space_of(col: Collection) -> str | None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # chromadb: "legacy embedding function config"
        conf = getattr(col, "configuration", None) or {}
    hnsw = conf.get("hnsw") if isinstance(conf, Mapping) else None
    if isinstance(hnsw, Mapping) and hnsw.get("space"):
        return str(hnsw["space"])
    meta = col.metadata or {}
    space = meta.get("hnsw:space")
    return str(space) if space else None
