"""``shortlist index``: files and folders into a Chroma collection."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shortlist.cli.database import open_prefilter
from shortlist.cli.distributed import actors_option, index_on_ray, ray_option
from shortlist.cli.group import cli
from shortlist.cli.options import (
    Database,
    EncoderSettings,
    chunk_tokens_option,
    encoder_options,
    json_option,
    progress_option,
    store_options,
)
from shortlist.cli.render import echo_json, report_dict, report_line
from shortlist.console import ingest_progress

if TYPE_CHECKING:
    from shortlist.loaders import LoadResult

__all__ = ["index"]


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@store_options
@encoder_options
@click.option("--text-field", default="text", show_default=True, help="Field holding the text in .jsonl files.")
@chunk_tokens_option
@click.option("--overlap", type=click.IntRange(0, 128), default=16, show_default=True, help="Chunk overlap.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Chunks per batch.")
@progress_option()
@json_option("Print the summary as JSON.")
@ray_option
@actors_option
def index(
    paths: tuple[Path, ...],
    db: Database,
    collection: str,
    settings: EncoderSettings,
    text_field: str,
    chunk_tokens: int,
    overlap: int,
    batch_size: int,
    progress: bool | None,
    as_json: bool,
    ray_address: str | None,
    actors: int | None,
) -> None:
    """Index files and folders (.pdf, .html, .docx, .txt, .md, .jsonl, BEIR corpus folders) into a collection.

    Re-running on the same files adds nothing: chunk ids are stable. A PDF gives one document per page (its
    number in each chunk's metadata); files that cannot be read and files of other types in a folder are listed.

    \b
    Example:
      shortlist index notes/ faq.jsonl --collection notes
    """  # noqa: D301
    from shortlist.loaders import SUPPORTED_SUFFIXES, load_files

    if overlap >= chunk_tokens:
        msg = f"--overlap ({overlap}) must be smaller than --chunk-tokens ({chunk_tokens})."
        raise click.UsageError(msg)
    if ray_address is not None or actors is not None:  # chunk, embed and write on Ray (docs/distributed.md)
        options = (text_field, chunk_tokens, overlap, batch_size, progress, as_json)
        return index_on_ray(paths, db, collection, settings, ray_address, actors, *options)
    started = time.perf_counter()
    loaded = load_files(paths, text_field=text_field)
    docs = [d.as_dict() for d in loaded.documents]
    if not docs and loaded.failed:  # every file failed: one line naming each and why
        raise click.ClickException("; ".join(loaded.failures()))
    if not docs:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        msg = f"Nothing to index in {', '.join(map(str, paths))}: no non-empty {kinds} files."
        if loaded.unsupported:
            msg += f" Not supported: {', '.join(Path(p).name for p in loaded.unsupported[:5])}."
        raise click.ClickException(msg)
    if not as_json:  # (with --json they are in "files")
        for line in loaded.failures():
            click.echo(f"Warning: cannot read {line}", err=True)
    prefilter = open_prefilter(db, collection, settings, chunk_tokens=chunk_tokens, chunk_overlap=overlap)
    show = sys.stderr.isatty() if progress is None else progress
    with ingest_progress(len(docs), enabled=show) as callback:
        report = prefilter.add_documents(docs, batch_size=batch_size, progress=callback)
    # The keyword index and the hybrid calibration, now rather than on the first query (hybrid is the default mode).
    prefilter.calibration()
    seconds = time.perf_counter() - started
    summary = report_dict(report)
    summary.update(collection=collection, db=str(db), seconds=round(seconds, 2), total_chunks=prefilter.count())
    summary["files"] = loaded.as_dict()  # files read, and the failed, unsupported and empty ones
    if as_json:
        echo_json(summary)
        return
    click.echo(_with_files(report_line(summary), loaded))


def _with_files(line: str, loaded: LoadResult) -> str:
    """The summary line, plus the files that could not be read and the unsupported ones (the first few names)."""
    extra = loaded.problems()
    return f"{line[:-1]}; {'; '.join(extra)}." if extra else line
