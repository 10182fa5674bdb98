"""The chunks the store writes (:class:`ChunkRecord`) and reads back (:class:`StoredChunk`), and their stable ids."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shortlist.errors import InputError
from shortlist.store.metadata import KEY_CHUNK, KEY_SOURCE, KEY_TOKENS, restore_metadata, sanitize_metadata

__all__ = ["ChunkRecord", "StoredChunk", "chunk_id", "include_fields", "stored_chunk", "stored_rows"]


def chunk_id(source: str, index: int, text: str) -> str:
    """The stable id of a chunk: a hash of its document's id, its index in the document and its text.

    Returns:
        32 hexadecimal characters (128 bits of SHA-256).
    """
    digest = hashlib.sha256(f"{source}\x1f{index}\x1f{text}".encode()).hexdigest()
    return digest[:32]


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


def stored_chunk(
    id_: str, text: str | None, meta: Mapping[str, Any] | None, score: float | None, emb: Any = None
) -> StoredChunk:
    """A :class:`StoredChunk` from what Chroma returned for one row (metadata restored, token count read)."""
    tokens = int((meta or {}).get(KEY_TOKENS, 0) or 0)
    vector = None if emb is None else np.asarray(emb, dtype=np.float32)
    return StoredChunk(id_, text or "", restore_metadata(meta), tokens, score, vector)


def include_fields(text: bool, embeddings: bool) -> list[str]:
    """Chroma's ``include`` list for reading metadata, plus texts and vectors when asked."""
    return ["metadatas"] + (["documents"] if text else []) + (["embeddings"] if embeddings else [])


def stored_rows(res: Mapping[str, Any]) -> list[StoredChunk]:
    """The chunks of one ``collection.get`` answer, in its order."""
    ids = res["ids"]
    docs = res.get("documents") or [None] * len(ids)
    embs = res.get("embeddings")
    if embs is None:
        embs = [None] * len(ids)
    return [stored_chunk(id_, docs[i], res["metadatas"][i], None, embs[i]) for i, id_ in enumerate(ids)]
