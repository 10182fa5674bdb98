"""What both framework vector stores share (no framework imports): one row per framework document or node.

A row written by a vector store holds the framework's text unchanged, under the framework's id, with the user's
metadata; its ``source`` (the pre-filter's document id) is given by the caller (a LangChain loader's
``metadata["source"]``, a LlamaIndex node's ``ref_doc_id``) or is the row's id, and its ``chunk`` is 0. A row the
pre-filter chunked itself is told apart by its id, which hashes (source, chunk index, text): see :func:`is_chunk`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shortlist.config import DEFAULT_COLLECTION
from shortlist.errors import ConfigError, InputError
from shortlist.prefilter import Prefilter
from shortlist.store import RESERVED_KEYS, ChunkRecord, StoredChunk, chunk_id, restore_metadata

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from shortlist.encoder import Encoder

__all__ = ["DEFAULT_COLLECTION", "is_chunk", "make_rows", "open_prefilter", "row_id", "user_metadata", "write_rows"]

KEY_SOURCE, KEY_CHUNK = RESERVED_KEYS


def open_prefilter(
    collection: str,
    *,
    prefilter: Prefilter | None,
    location: tuple[str, str | Path | None],
    client: ClientAPI | None,
    host: str | None,
    port: int | None,
    in_memory: bool,
    encoder: Encoder | None,
    exclusive: Sequence[tuple[str, object]] = (),
) -> Prefilter:
    """The pre-filter a vector store works on: the one given, a new in-memory one, or one at a location.

    Args:
        collection: The collection's name (for a new pre-filter).
        prefilter: A pre-filter to use as it is.
        location: The store's name for its folder argument (``persist_directory``, ``persist_dir``) and its value.
        client: A Chroma client.
        host: A Chroma server's host.
        port: Its port.
        in_memory: A private in-memory database.
        encoder: The encoder of a new pre-filter.
        exclusive: More ``(name, value)`` arguments that may not come with ``prefilter`` (when truthy).

    Raises:
        ConfigError: on a ``prefilter`` that is not a :class:`Prefilter`, or one given with a location (or one of
            ``exclusive``), or ``in_memory`` with a folder, client or host.
    """
    path_name, path = location
    if prefilter is not None:
        if not isinstance(prefilter, Prefilter):
            msg = f"prefilter must be a shortlist Prefilter, got {type(prefilter).__name__}."
            raise ConfigError(msg)
        given = [n for n, v in ((path_name, path), ("client", client), ("host", host), ("in_memory", in_memory)) if v]
        given += [n for n, v in exclusive if v]
        if given:
            msg = f"Give prefilter= or a location ({', '.join(given)}), not both."
            raise ConfigError(msg)
        return prefilter
    if in_memory:
        if path is not None or client is not None or host is not None:
            msg = f"in_memory=True takes no {path_name}, client or host."
            raise ConfigError(msg)
        return Prefilter.in_memory(collection, encoder=encoder)
    return Prefilter(collection, path=path, client=client, host=host, port=port, encoder=encoder)


def row_id(given: Any, where: str) -> str:
    """``given`` as a row id, or a new UUID when it is ``None`` or empty (as Chroma's LangChain store does)."""
    if given is None or given == "":
        return str(uuid.uuid4())
    if isinstance(given, bool) or not isinstance(given, str | int):
        msg = f"{where} must be a non-empty str, got {given!r}."
        raise InputError(msg)
    return str(given)


def make_rows(
    prefilter: Prefilter,
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any]],
    ids: Sequence[str],
    sources: Sequence[str | None],
) -> list[ChunkRecord]:
    """Records for ``texts`` (checked whole before anything is written).

    Raises:
        InputError: on an empty text or metadata shortlist cannot store, naming its position.
    """
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            msg = f"texts[{i}] is empty or not a str ({type(text).__name__}): nothing was written."
            raise InputError(msg)
    tokenizer = prefilter.encoder.tokenizer
    counts = [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)] if texts else []
    records = []
    for i, text in enumerate(texts):
        source = sources[i] or ids[i]
        rec = ChunkRecord(source=source, chunk=0, text=text, tokens=counts[i], metadata=dict(metadatas[i]), id=ids[i])
        rec.chroma_metadata()  # refuses metadata Chroma cannot store, before anything is written
        records.append(rec)
    return records


def write_rows(prefilter: Prefilter, records: Sequence[ChunkRecord], vectors: Any = None) -> None:
    """Write ``records`` (an id already stored is overwritten; one stored as is, with its metadata, is skipped).

    Args:
        prefilter: The pre-filter whose collection takes them.
        records: The rows (an id given twice: the last one wins).
        vectors: Their vectors, one per record, when the framework embedded them already; else they are embedded
            with the pre-filter's encoder.
    """
    last = {r.id: i for i, r in enumerate(records)}
    store = prefilter.store
    stored = {c.id: c for c in store.get(list(last))}
    todo = [i for i in last.values() if records[i].id not in stored or not _same(stored[records[i].id], records[i])]
    changed = [records[i].id for i in todo if records[i].id in stored and stored[records[i].id].text != records[i].text]
    if changed:
        # The same id with another text: drop the old row first (its metadata must not merge into the new one's).
        # The keyword index follows both writes by itself (shortlist.keywords.cache).
        prefilter.delete(ids=changed)
    replaced = [records[i].id for i in todo if records[i].id in stored and records[i].id not in changed]
    if replaced:
        store.delete(replaced)  # Chroma's upsert merges metadata: a key the new version lacks would stay
    if not todo:
        return
    rows = [records[i] for i in todo]
    if vectors is None:
        store.upsert(rows, prefilter.encoder.embed_documents([r.text for r in rows]))
    else:
        store.upsert(rows, [vectors[i] for i in todo])


def _same(stored: StoredChunk, record: ChunkRecord) -> bool:
    return bool(stored.text == record.text and dict(stored.metadata) == restore_metadata(record.chroma_metadata()))


def is_chunk(id_: str, text: str, metadata: Mapping[str, Any]) -> bool:
    """Whether a stored row is a chunk the pre-filter cut (its id hashes its source, index and text)."""
    source, index = metadata.get(KEY_SOURCE), metadata.get(KEY_CHUNK)
    return isinstance(source, str) and isinstance(index, int) and id_ == chunk_id(source, index, text)


def user_metadata(id_: str, text: str, metadata: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The metadata as given at ingest and the row's document id (``None`` when it is the row's own id).

    A chunk the pre-filter cut keeps ``source`` and ``chunk``. A row a vector store wrote loses the ``source`` and
    ``chunk`` shortlist added, and gets back the user's own keys of those names (stored as ``original_<key>``).
    """
    meta = dict(metadata)
    if is_chunk(id_, text, meta):
        return meta, str(meta[KEY_SOURCE])
    meta.pop(KEY_CHUNK, None)
    source = meta.get(KEY_SOURCE)
    doc: str | None = source if isinstance(source, str) and source != id_ else None
    if source == id_:
        meta.pop(KEY_SOURCE)
    for key in (KEY_SOURCE, KEY_CHUNK):
        if f"original_{key}" in meta:
            meta[key] = meta.pop(f"original_{key}")
    return meta, doc
