"""Chunk metadata in Chroma: the reserved keys, the reversible sanitising of user values, and the field registry.

Each chunk carries ``source`` (its document's id) and ``chunk`` (its index in the document), plus the user's
metadata. Chroma 1.x stores ``str``, ``int``, ``float``, ``bool`` and non-empty lists of one of those types.
Everything else that JSON can express (``None``, nested dicts, empty or mixed lists, tuples of mixed types) is
stored as a JSON string and its key listed in the reserved key ``_sl_json``; reading restores the value exactly (a
tuple comes back as a list). NumPy scalars and arrays become Python numbers and lists. Values JSON cannot express
(dates, bytes, sets, objects) are refused with :class:`~shortlist.errors.InputError` before anything is written:
convert them to ``str`` first. Keys starting with ``_sl_`` or ``chroma:`` are reserved.

The field registry (:class:`FieldRegistry`) records in the collection's metadata (``shortlist:fields``) which keys
the chunks carry, so that a ``where`` filter naming a field no chunk has is refused instead of matching nothing.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.errors import InputError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = [
    "INTERNAL_KEYS",
    "KEY_CHUNK",
    "KEY_JSON",
    "KEY_SOURCE",
    "KEY_TITLE",
    "KEY_TOKENS",
    "META_FIELDS",
    "RESERVED_KEYS",
    "FieldRegistry",
    "restore_metadata",
    "sanitize_metadata",
    "where_fields",
]

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
#: Collection metadata key listing the chunks' metadata keys (a JSON list).
META_FIELDS = "shortlist:fields"
_FILTER_OPERATORS = ("$and", "$or")


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


def where_fields(where: Mapping[str, Any]) -> set[str]:
    """The metadata fields a Chroma ``where`` filter names (inside ``$and`` / ``$or`` too)."""
    out: set[str] = set()
    for key, value in where.items():
        if key in _FILTER_OPERATORS and isinstance(value, list):
            for sub in value:
                if isinstance(sub, Mapping):
                    out |= where_fields(sub)
        elif not key.startswith("$"):
            out.add(key)
    return out


class FieldRegistry:
    """The metadata keys the chunks of one collection carry, kept in the collection's metadata.

    The list is read once and cached; :meth:`record` merges new keys in (re-reading first, since another process
    may have added some), :meth:`forget` drops the cache so the next read asks Chroma again.

    Args:
        client: The Chroma client the collection was opened with.
        collection: The collection.
        lock: The store's lock (shared, so the registry and the store's writes never interleave).
    """

    def __init__(self, client: ClientAPI, collection: Collection, lock: threading.RLock) -> None:
        self.client = client
        self.collection = collection
        self.name = collection.name
        self._lock = lock
        self._fields: set[str] | None = None

    def known(self) -> set[str]:
        """Metadata keys that chunks of the collection carry (``source`` and ``chunk`` always)."""
        with self._lock:
            if self._fields is None:
                self._fields = self._read()
            return set(self._fields)

    def forget(self) -> None:
        """Drop the cached list: the next :meth:`known` reads it from Chroma again."""
        with self._lock:
            self._fields = None

    def _read(self) -> set[str]:
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

    def record(self, keys: set[str]) -> None:
        """Add ``keys`` (of chunks about to be written) to the collection's list; internal keys are left out."""
        keys = keys - set(INTERNAL_KEYS)
        with self._lock:
            known = self.known()
            if keys <= known:
                return
            current = self._read()  # another process may have added some
            merged = sorted(current | known | keys)
            meta = dict(self.client.get_collection(self.name, embedding_function=None).metadata or {})
            meta[META_FIELDS] = json.dumps(merged)
            meta.pop("hnsw:space", None)
            self.collection.modify(metadata=meta)
            self._fields = set(merged)

    def check_where(self, where: Mapping[str, Any]) -> None:
        """Check a metadata filter before Chroma sees it (see :meth:`shortlist.store.ChunkStore.check_where`).

        Raises:
            InputError: if it is not valid Chroma syntax, or names a field no chunk in the collection has.
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
        unknown = sorted(where_fields(where) - self.known())
        if unknown:
            self.forget()  # another writer may have added fields: read again before refusing
            unknown = sorted(where_fields(where) - self.known())
        if unknown:
            known = ", ".join(sorted(self.known() - set(INTERNAL_KEYS)))
            msg = (
                f"where filters on {', '.join(map(repr, unknown))}, which no chunk in collection {self.name!r} "
                f"has. Known fields: {known}."
            )
            raise InputError(msg)
