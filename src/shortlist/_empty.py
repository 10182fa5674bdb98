"""The warning a search on an empty collection gives, naming the collections the same database does have.

A mistyped name (``Prefilter("nots")``) opens a new, empty collection; its searches then return empty shortlists,
which look like "nothing relevant". :func:`warn_empty_collection` says so once per pre-filter, with
:func:`warnings.warn` and :class:`~shortlist.errors.EmptyCollectionWarning` rather than a log record: the cause is
in the caller's code (Python's rule for the choice), the warning points at the caller's line, shows in a notebook or
script without any logging set up, and can be silenced by category
(``warnings.simplefilter("ignore", EmptyCollectionWarning)``) or turned into an error in tests.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from shortlist.errors import EmptyCollectionWarning
from shortlist.store.journal import is_journal_name

if TYPE_CHECKING:
    from shortlist.store import ChunkStore

__all__ = ["empty_collection_message", "other_collections", "warn_empty_collection"]

_PACKAGE = str(Path(__file__).resolve().parent)
SHOWN = 8


def other_collections(store: ChunkStore) -> dict[str, int] | None:
    """The database's other collections with their sizes (largest first), or ``None`` if Chroma cannot list them."""
    sizes: dict[str, int] = {}
    try:
        for col in store.client.list_collections():
            name = col if isinstance(col, str) else col.name
            if name != store.name and not is_journal_name(name):
                sizes[name] = store.client.get_collection(name, embedding_function=None).count()
    except Exception:  # listing is a courtesy: a client that cannot list must not break the search
        return None
    return dict(sorted(sizes.items(), key=lambda item: (-item[1], item[0])))


def empty_collection_message(store: ChunkStore) -> str:
    """What the warning says: the collection is empty, and which collections this database has."""
    path = getattr(store, "path", None)
    where = f" in {path}" if path is not None else ""
    head = f"Collection {store.name!r}{where} is empty: searches return nothing until documents are added."
    others = other_collections(store)
    if others is None:
        return head
    filled = {name: n for name, n in others.items() if n > 0}
    if not filled:
        return f"{head} This database has no other collection with chunks."
    listed = ", ".join(f"{name!r} ({n:,} chunks)" for name, n in list(filled.items())[:SHOWN])
    more = f" and {len(filled) - SHOWN} more" if len(filled) > SHOWN else ""
    close = difflib.get_close_matches(store.name, list(filled), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{head} Collections with chunks in this database: {listed}{more}.{hint}"


def warn_empty_collection(store: ChunkStore) -> None:
    """Warn that ``store``'s collection is empty (:class:`~shortlist.errors.EmptyCollectionWarning`), at the caller."""
    warnings.warn(empty_collection_message(store), EmptyCollectionWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The stack level of the first frame outside shortlist (the user's call), for ``warnings.warn``."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
