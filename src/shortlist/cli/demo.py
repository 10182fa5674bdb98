"""``shortlist demo``: the pre-filter over Python's own documentation (the job is :mod:`shortlist.demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from shortlist.cli.group import cli
from shortlist.cli.options import EncoderSettings, collection_option, db_option, encoder_options

__all__ = ["demo"]


@cli.command()
@db_option()
@collection_option(default="python-docs", help="Collection for the demo.")
@click.option("--rebuild", is_flag=True, help="Delete and rebuild the demo collection.")
@click.option("--limit", type=click.IntRange(1), help="Index only the first N documents (a quick try).")
@click.option("--question", "questions", multiple=True, help="Ask this instead of the built-in questions.")
@click.option("-k", "k", type=click.IntRange(1, 50), default=3, show_default=True, help="Hits per question.")
@encoder_options
def demo(
    db: Path,
    collection: str,
    rebuild: bool,
    limit: int | None,
    questions: tuple[str, ...],
    k: int,
    settings: EncoderSettings,
) -> None:
    """Index Python's own documentation (offline) and print the shortlists of a few real questions."""
    from shortlist import demo as demo_job  # lazy: the corpus and the pre-filter load only when the demo runs

    demo_job.run(
        db=db,
        collection=collection,
        rebuild=rebuild,
        limit=limit,
        questions=list(questions) or None,
        k=k,
        encoder=settings.encoder(),
    )
