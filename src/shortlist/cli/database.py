"""The commands' way to the store: the database's collections and a pre-filter over one of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from shortlist.cli.options import EncoderSettings
    from shortlist.prefilter import Prefilter

__all__ = ["collection_sizes", "open_prefilter", "require_collection"]


def collection_sizes(db: Path) -> dict[str, int] | None:
    """Collections of the embedded database at ``db`` with their chunk counts; ``None`` if there is none yet."""
    if not db.is_dir() or not any(db.iterdir()):
        return None
    from shortlist.store import ChunkStore

    return ChunkStore.list_collections(path=db)


def require_collection(db: Path, collection: str) -> None:
    """Fail with one line (naming the command that builds it) if the collection does not exist yet."""
    sizes = collection_sizes(db)
    if sizes is None or collection not in sizes:
        have = f" (it has: {', '.join(sizes)})" if sizes else ""
        msg = (
            f"No collection {collection!r} in {db}{have}. "
            f"Build it first: shortlist index PATH --collection {collection} --db {db}"
        )
        raise click.ClickException(msg)


def open_prefilter(db: Path, collection: str, settings: EncoderSettings, **kwargs: Any) -> Prefilter:
    """A :class:`~shortlist.prefilter.Prefilter` over ``collection`` in ``db`` with the settings' encoder."""
    from shortlist.prefilter import Prefilter

    return Prefilter(collection, path=db, encoder=settings.encoder(), **kwargs)
