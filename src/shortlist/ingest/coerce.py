"""Ingest, first stage: the caller's documents as :class:`SourceDocument` values (id, cleaned text, metadata).

Strings, dicts, LangChain ``Document`` objects and LlamaIndex nodes are accepted.

The frameworks are never imported: a document is read by its shape (``.page_content`` or ``.text``, ``.metadata``,
``.id``/``.id_``/``.doc_id``).

Example:
    ```python
    from shortlist.ingest.coerce import coerce_document

    doc = coerce_document({"id": "a", "text": "Cats  sleep.", "metadata": {"lang": "en"}}, 0)
    print(doc.source, repr(doc.text), dict(doc.metadata))
    # a 'Cats sleep.' {'lang': 'en'}
    ```
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shortlist.errors import ConfigError, InputError
from shortlist.store import KEY_CHUNK, KEY_SOURCE, sanitize_metadata
from shortlist.text import clean_text

__all__ = ["SourceDocument", "coerce_document", "coerce_documents"]

logger = logging.getLogger(__name__)

#: Keys of a dict document that hold its text, and its id, in the order they are looked for.
TEXT_KEYS = ("text", "page_content", "content")
ID_KEYS = ("id", "_id", "doc_id")
#: Attributes of a document object that hold its id (LangChain ``id``, LlamaIndex ``id_``, ``doc_id``).
ID_ATTRS = ("id", "id_", "doc_id")


@dataclass(frozen=True)
class SourceDocument:
    """One document ready to chunk.

    Attributes:
        source: The document's id (every chunk's ``source``).
        text: Its cleaned text (:func:`~shortlist.text.clean_text`).
        metadata: Its metadata (the document's own, then the call's ``metadatas`` entry over it).
    """

    source: str
    text: str
    metadata: Mapping[str, Any]


def _read(doc: Any, where: str) -> tuple[Any, Any, Any]:
    """``(text, id, metadata)`` as the document holds them (not checked yet)."""
    if isinstance(doc, str):
        return doc, None, None
    if isinstance(doc, Mapping):
        text = next((doc[k] for k in TEXT_KEYS if doc.get(k) is not None), None)
        doc_id = next((doc[k] for k in ID_KEYS if doc.get(k) is not None), None)
        return text, doc_id, doc.get("metadata")
    text = getattr(doc, "page_content", None)
    if text is None:
        text = getattr(doc, "text", None)
    doc_id = None
    for attr in ID_ATTRS:
        value = getattr(doc, attr, None)
        if isinstance(value, str) and value:
            doc_id = value
            break
    meta = getattr(doc, "metadata", None)
    if text is None and meta is None:
        msg = (
            f"{where} is a {type(doc).__name__}: give a str, a dict with 'text' or 'page_content', or an "
            "object with .page_content or .text (a LangChain or LlamaIndex Document)."
        )
        raise InputError(msg)
    return text, doc_id, meta


def coerce_document(
    doc: Any, i: int, ids: Sequence[str] | None = None, metadatas: Sequence[Any] | None = None
) -> SourceDocument:
    """Read document ``i`` of a call (with the call's ``ids[i]`` and ``metadatas[i]``, when given).

    The id is, in order: ``ids[i]``; the document's own (``"id"``/``"_id"``/``"doc_id"`` key, or attribute
    ``.id``/``.id_``/``.doc_id``); ``metadata["source"]``; else a hash of the cleaned text.

    Raises:
        InputError: on a document without text, a bad id, or metadata that is not a dict or that Chroma cannot
            store (named by position).
    """
    where = f"documents[{i}]"
    text, doc_id, meta = _read(doc, where)
    if not isinstance(text, str):
        msg = f"{where} has no text (got {type(text).__name__}); give its text as a str."
        raise InputError(msg)
    if meta is not None and not isinstance(meta, Mapping):
        msg = f"{where}.metadata must be a dict, got {type(meta).__name__}."
        raise InputError(msg)
    merged = dict(meta or {})
    if metadatas is not None:
        extra = metadatas[i]
        if extra is not None and not isinstance(extra, Mapping):
            msg = f"metadatas[{i}] must be a dict or None, got {type(extra).__name__}."
            raise InputError(msg)
        merged.update(extra or {})
    if ids is not None:
        doc_id = ids[i]
    if doc_id is not None and (not isinstance(doc_id, str | int) or isinstance(doc_id, bool) or doc_id == ""):
        msg = f"The id of {where} must be a non-empty str, got {doc_id!r}."
        raise InputError(msg)
    cleaned = clean_text(text)
    if not cleaned:
        msg = f"{where} is empty after cleaning: drop it (nothing was written for it)."
        raise InputError(msg)
    if doc_id is None:
        src = merged.get(KEY_SOURCE)
        doc_id = src if isinstance(src, str) and src else "doc-" + hashlib.sha256(cleaned.encode()).hexdigest()[:20]
    sanitize_metadata({k: v for k, v in merged.items() if k not in (KEY_SOURCE, KEY_CHUNK)}, where=f"{where}.metadata")
    return SourceDocument(str(doc_id), cleaned, merged)


def coerce_documents(
    documents: str | Iterable[Any],
    *,
    ids: Sequence[str] | None = None,
    metadatas: Sequence[Mapping[str, Any] | None] | None = None,
) -> Iterator[SourceDocument]:
    """The documents of one call, read: a list whole and at once (then deduplicated), an iterator lazily.

    A single str or dict is one document. In a list, a document id seen twice keeps its last version (logged).

    Raises:
        InputError: on a bad document (see :func:`coerce_document`); with a list, before anything is returned.
        ConfigError: on ``ids``/``metadatas`` whose length does not match, or given with an iterator.
    """
    if isinstance(documents, str | bytes) or isinstance(documents, Mapping):
        documents = [documents]
    if isinstance(documents, Sequence):
        for name, seq in (("ids", ids), ("metadatas", metadatas)):
            if seq is not None and len(seq) != len(documents):
                msg = f"{name} has {len(seq)} entries for {len(documents)} documents."
                raise ConfigError(msg)
        read = [coerce_document(d, i, ids, metadatas) for i, d in enumerate(documents)]
        latest = {d.source: i for i, d in enumerate(read)}
        if len(latest) < len(read):
            logger.warning("%d documents repeat an id; the last of each is kept.", len(read) - len(latest))
        return iter([d for i, d in enumerate(read) if latest[d.source] == i])
    if ids is not None or metadatas is not None:
        msg = "ids and metadatas need a list of documents; with an iterator, put them in each document."
        raise ConfigError(msg)
    return (coerce_document(d, i) for i, d in enumerate(documents))
