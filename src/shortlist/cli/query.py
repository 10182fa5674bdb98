"""``shortlist query``: a question's shortlist from a collection, as a table or JSON."""

from __future__ import annotations

import json
from typing import Any, cast

import click

from shortlist.cli.database import open_prefilter, require_collection
from shortlist.cli.group import cli
from shortlist.cli.options import MODES, Database, EncoderSettings, encoder_options, json_option, store_options
from shortlist.cli.render import echo_json, format_shortlist
from shortlist.config import DEFAULT_K, DEFAULT_MODE, SearchMode
from shortlist.search.options import SearchOptions

__all__ = ["parse_where", "query"]


def parse_where(value: str | None, option: str) -> dict[str, Any] | None:
    """The JSON object given to ``option`` (``None`` if not given); a bad one is a usage error naming the option."""
    if value is None:
        return None
    try:
        where = json.loads(value)
    except json.JSONDecodeError as exc:
        msg = f'{option} must be a JSON object such as \'{{"kind": "topic"}}\': {exc.msg} at column {exc.colno}.'
        raise click.BadParameter(msg, param_hint=option) from exc
    if not isinstance(where, dict):
        msg = f"{option} must be a JSON object, got {type(where).__name__}."
        raise click.BadParameter(msg, param_hint=option)
    return where


@cli.command()
@click.argument("question")
@store_options
@encoder_options
@click.option("-k", "k", type=click.IntRange(1, 1000), default=DEFAULT_K, show_default=True, help="Hits to keep.")
@click.option("--min-score", type=click.FloatRange(-1.0, 1.0), help="Drop hits under this cosine similarity.")
@click.option(
    "--min-relevance",
    type=click.FloatRange(0.0, 1.0),
    help="Drop hits under this relevance (0-1, calibrated on the collection, any language; try 0.5).",
)
@click.option("--hybrid", is_flag=True, help="Same as --mode hybrid (the default).")
@click.option("--mode", type=click.Choice(MODES), help="Retrieval mode (default: hybrid).")
@click.option("--where", "where_json", metavar="JSON", help='Metadata filter, e.g. \'{"kind": "topic"}\'.')
@click.option("--where-document", "where_doc_json", metavar="JSON", help='Text filter, e.g. \'{"$contains": "json"}\'.')
@click.option("--budget", type=click.IntRange(1), metavar="TOKENS", help="Keep the best hits within this many tokens.")
@click.option("--mmr", is_flag=True, help="Diversify the hits (maximal marginal relevance).")
@click.option("--max-per-source", type=click.IntRange(1), help="At most this many chunks from one document.")
@json_option("Print the shortlist as JSON.")
def query(
    question: str,
    db: Database,
    collection: str,
    settings: EncoderSettings,
    k: int,
    min_score: float | None,
    min_relevance: float | None,
    hybrid: bool,
    mode: str | None,
    where_json: str | None,
    where_doc_json: str | None,
    budget: int | None,
    mmr: bool,
    max_per_source: int | None,
    as_json: bool,
) -> None:
    """Print the shortlist of chunks for QUESTION, with the figures.

    \b
    Example:
      shortlist query "how do I read a file line by line?" -k 3 --hybrid
    """  # noqa: D301
    if hybrid and mode not in (None, "hybrid"):
        msg = f"--hybrid and --mode {mode} contradict each other: give one of them."
        raise click.UsageError(msg)
    if not question.strip():
        msg = "QUESTION is empty: ask something."
        raise click.BadParameter(msg, param_hint="QUESTION")
    where = parse_where(where_json, "--where")
    where_document = parse_where(where_doc_json, "--where-document")
    require_collection(db, collection)
    prefilter = open_prefilter(db, collection, settings)
    options = SearchOptions(
        k=k,
        min_score=min_score,
        min_relevance=min_relevance,
        where=where,
        where_document=where_document,
        mode=cast("SearchMode", "hybrid" if hybrid else (mode or DEFAULT_MODE)),
        mmr=mmr,
        max_per_source=max_per_source,
        budget=budget,
    )
    result = prefilter.search_with(question, options)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(format_shortlist(result))
