"""The commands' way to the store: the database's collections and a pre-filter over one of them.

The database is a :class:`~shortlist.cli.options.Database`: an embedded folder (``--db``) or a Chroma server
(``--chroma-url``, ``SHORTLIST_CHROMA_URL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from shortlist.cli.options import Database, EncoderSettings
    from shortlist.prefilter import Prefilter

__all__ = ["collection_sizes", "open_prefilter", "require_collection"]


def collection_sizes(db: Database) -> dict[str, int] | None:
    """Collections of the database with their chunk counts; ``None`` for an embedded folder not made yet.

    Raises:
        StoreError: if the Chroma server cannot be reached (the message names it).
    """
    from shortlist.store import ChunkStore

    folder = db.path
    if folder is not None and (not folder.is_dir() or not any(folder.iterdir())):
        return None
    return ChunkStore.list_collections(**db.store_kwargs())


def require_collection(db: Database, collection: str) -> None:
    """Fail with one line (naming the command that builds it) if the collection does not exist yet."""
    sizes = collection_sizes(db)
    if sizes is None or collection not in sizes:
        have = f" (it has: {', '.join(sizes)})" if sizes else ""
        msg = (
            f"No collection {collection!r} in {db}{have}. "
            f"Build it first: shortlist index PATH --collection {collection} {db.option()}"
        )
        raise click.ClickException(msg)


def open_prefilter(db: Database, collection: str, settings: EncoderSettings, **kwargs: Any) -> Prefilter:
    """A :class:`~shortlist.prefilter.Prefilter` over ``collection`` in ``db`` with the settings' encoder."""
    from shortlist.prefilter import Prefilter

    return Prefilter(collection, **db.store_kwargs(), encoder=settings.encoder(), **kwargs)
