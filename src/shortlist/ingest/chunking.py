r"""Ingest, second stage: a document's chunks, each headed by the document's title (the title policy, in one place).

A document whose metadata has a title (``title_key``, default ``"title"``) gets it at the head of **every** chunk
(title, line break, chunk text), not only the first, so a chunk cut from the middle still says what it is about:
to the dense side, to BM25 and to the LLM that reads it. The title is cleaned and its white space collapsed; it
counts against ``chunk_tokens``, and a title longer than a third of ``chunk_tokens`` is not repeated (the document
keeps it only where it wrote it). A body that starts with its title loses that copy, as whole words only
(:func:`without_leading_title`), so the title is not read twice; the overlap is kept below half of what the title
leaves.

Example:
    ```python
    from shortlist.ingest.chunking import titled, without_leading_title

    print(repr(titled("json.loads", without_leading_title("json.loads(s) parses JSON.", "json.loads"))))
    # 'json.loads\n(s) parses JSON.'
    ```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shortlist.errors import ConfigError
from shortlist.store import ChunkRecord
from shortlist.text import clean_text, split_text

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from shortlist.ingest.coerce import SourceDocument

__all__ = [
    "TITLE_SEPARATOR",
    "check_chunking",
    "chunk_document",
    "heads_with_title",
    "title_of",
    "titled",
    "without_leading_title",
]

#: What joins a chunk's title and its text.
TITLE_SEPARATOR = "\n"
#: A title longer than ``chunk_tokens // TITLE_SHARE`` word pieces is not repeated on every chunk.
TITLE_SHARE = 3


def check_chunking(chunk_tokens: Any, chunk_overlap: Any, title_key: Any, *, max_tokens: int) -> None:
    """Refuse chunk sizes the model cannot take whole, or a title key that is not a key.

    Args:
        chunk_tokens: Most word pieces in a chunk: an int from 8 to ``max_tokens``.
        chunk_overlap: Word pieces carried over: an int in ``[0, chunk_tokens)``.
        title_key: A non-empty str, or ``None``.
        max_tokens: The model's window for text (without its special tokens).

    Raises:
        ConfigError: naming the bad value.
    """
    if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 8:
        msg = f"chunk_tokens must be an int >= 8, got {chunk_tokens!r}."
        raise ConfigError(msg)
    if chunk_tokens > max_tokens:
        msg = (
            f"chunk_tokens={chunk_tokens} is over the model's window ({max_tokens} word pieces): "
            "chunks would be cut. Use a smaller value."
        )
        raise ConfigError(msg)
    if not isinstance(chunk_overlap, int) or not 0 <= chunk_overlap < chunk_tokens:
        msg = f"chunk_overlap must be an int in [0, chunk_tokens), got {chunk_overlap!r}."
        raise ConfigError(msg)
    if title_key is not None and (not isinstance(title_key, str) or not title_key):
        msg = f"title_key must be a metadata key (a non-empty str) or None, got {title_key!r}."
        raise ConfigError(msg)


def _count(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def title_of(
    metadata: Mapping[str, Any], title_key: str | None, tokenizer: Tokenizer, chunk_tokens: int
) -> tuple[str, int]:
    """The title to head each chunk with and its word pieces, or ``("", 0)``: none, not a str, or too long."""
    value = metadata.get(title_key) if title_key else None
    if not isinstance(value, str):
        return "", 0
    title = " ".join(clean_text(value).split())
    tokens = _count(tokenizer, title) if title else 0
    return (title, tokens) if 0 < tokens <= chunk_tokens // TITLE_SHARE else ("", 0)


def titled(title: str, text: str) -> str:
    """A chunk's text headed by its title (``title``, line break, ``text``)."""
    return f"{title}{TITLE_SEPARATOR}{text}"


def heads_with_title(text: str, title: Any) -> bool:
    """Whether a chunk's ``text`` starts with ``title`` (a non-empty str), as each chunk of a titled document does."""
    return isinstance(title, str) and bool(title) and text.startswith(title)


def without_leading_title(body: str, title: str) -> str:
    """``body`` without ``title`` at its start (white space may differ), unless a word goes on after it.

    "json.loads(s)" under the title "json.loads" loses the title; "JSONDecoder" under "JSON" keeps all its letters.
    """
    pattern = r"\s*" + r"\s+".join(re.escape(word) for word in title.split()) + r"(?!\w)"
    match = re.match(pattern, body)
    return body[match.end() :].lstrip() if match else body


def chunk_document(
    doc: SourceDocument,
    *,
    tokenizer: Tokenizer,
    chunk_tokens: int,
    chunk_overlap: int,
    title_key: str | None,
) -> list[ChunkRecord]:
    """Split a document into chunks of at most ``chunk_tokens`` word pieces (title included), with their counts.

    Args:
        doc: The document.
        tokenizer: The model's tokenizer (chunk sizes are word pieces of the model that embeds them).
        chunk_tokens: Most word pieces in a chunk.
        chunk_overlap: Word pieces carried from one chunk to the next.
        title_key: Metadata key of the title (``None``: no titles).

    Returns:
        The chunks, in order (``chunk`` = 0, 1, ...), with their ids computed from (source, index, text).
    """
    title, title_tokens = title_of(doc.metadata, title_key, tokenizer, chunk_tokens)
    body, budget, overlap = doc.text, chunk_tokens, chunk_overlap
    if title:
        body = without_leading_title(body, title)
        budget -= title_tokens
        overlap = min(overlap, budget // 2)  # the title took part of the chunk: keep the overlap below half
    pieces = split_text(body, budget, overlap, tokenizer=tokenizer)
    if title:
        pieces = [titled(title, p) for p in pieces] or [title]
    counts = [len(e.ids) for e in tokenizer.encode_batch(pieces, add_special_tokens=False)] if pieces else []
    return [
        ChunkRecord(source=doc.source, chunk=i, text=p, tokens=n, metadata=doc.metadata)
        for i, (p, n) in enumerate(zip(pieces, counts, strict=True))
    ]
