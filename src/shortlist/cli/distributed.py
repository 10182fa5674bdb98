"""``shortlist index PATHS... --ray [ADDRESS]``: the same ingest on a Ray actor pool, into a Chroma server."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shortlist.cli.render import echo_json

if TYPE_CHECKING:
    from shortlist.cli.options import Database, EncoderSettings
    from shortlist.distributed import DistributedReport

__all__ = ["LOCAL", "index_on_ray", "ray_option"]

#: ``--ray`` without an address: start a local Ray instance.
LOCAL = "local"


def _check_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value in (LOCAL, "auto") or value.startswith("ray://"):
        return value
    if ":" not in value or Path(value).exists():  # `--ray docs/`: the path was taken for the address
        msg = f"{value!r} is not a Ray address: give 'auto', ray://HOST:PORT or HOST:PORT, or put --ray last."
        raise click.BadParameter(msg)
    return value


#: ``--ray [ADDRESS]`` as ``ray_address``; ``--actors N`` as ``actors``.
ray_option = click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value=LOCAL,
    default=None,
    metavar="[ADDRESS]",
    callback=_check_address,
    help="Chunk, embed and write on Ray (into a Chroma server): alone, a local Ray instance; 'auto' or "
    "ray://HOST:PORT, a cluster. --batch-size is then documents per Ray task.",
)
actors_option = click.option(
    "--actors", type=click.IntRange(1), default=None, help="With --ray: encoder actors (default: one per CPU)."
)


@contextlib.contextmanager
def _bar(enabled: bool) -> Iterator[Callable[[DistributedReport], None] | None]:
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc="indexing on ray", unit="doc", file=sys.stderr, dynamic_ncols=True)

    def update(report: DistributedReport) -> None:
        if bar.total is None and report.files is not None:
            bar.total = int(report.files.get("documents", 0)) or None
        bar.update(report.documents - bar.n)
        bar.set_postfix(chunks=report.chunks, new=report.added, workers=len(report.workers), refresh=False)

    try:
        yield update
    finally:
        bar.close()


def index_on_ray(
    paths: tuple[Path, ...],
    db: Database,
    collection: str,
    settings: EncoderSettings,
    ray_address: str | None,
    actors: int | None,
    text_field: str,
    chunk_tokens: int,
    overlap: int,
    batch_size: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Run :func:`shortlist.distributed.index` for ``shortlist index --ray`` and print its report."""
    from shortlist.distributed import index

    if ray_address is None:
        msg = "--actors goes with --ray."
        raise click.UsageError(msg)
    server = db.server
    if server is None:
        msg = (
            "--ray writes to a Chroma server every worker can reach: give --chroma-url http://HOST:PORT "
            "(or --chroma-host and --chroma-port); an embedded --db folder belongs to one process."
        )
        raise click.UsageError(msg)
    show = sys.stderr.isatty() if progress is None else progress
    with _bar(show) as callback:
        report = index(
            list(paths),
            collection=collection,
            host=server.host,
            port=server.port,
            ray_address=None if ray_address == LOCAL else ray_address,
            actors=actors,
            batch_size=batch_size,
            model=settings.model,
            backend=settings.backend,
            device=settings.device,
            chunk_tokens=chunk_tokens,
            chunk_overlap=overlap,
            text_field=text_field,
            progress=callback,
        )
    summary: dict[str, Any] = report.as_dict()
    summary.update(collection=collection, db=str(db))
    if as_json:
        echo_json(summary)
        return
    for failed in (report.files or {}).get("failed", []):
        click.echo(f"Warning: cannot read {failed['path']}: {failed['reason']}", err=True)
    click.echo(report_text(report, collection, str(db)))


def _workers(n: int) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"


def report_text(report: DistributedReport, collection: str, db: str) -> str:
    """The summary: one line of totals, one of where the time went, one per worker."""
    lines = [
        f"Indexed {report.documents:,} documents on Ray: {report.chunks:,} chunks, {report.tokens:,} tokens in "
        f"{report.seconds:.1f} s ({report.chunks_per_second:.1f} chunks/s); {report.added:,} new, "
        f"{report.chunks - report.added:,} already there; collection {collection!r} now holds "
        f"{report.total_chunks:,} chunks ({db}).",
        f"Time: read {report.read_s:.1f} s (driver); chunk {report.chunk_s:.1f} s, diff {report.diff_s:.1f} s, "
        f"embed {report.embed_s:.1f} s, write {report.write_s:.1f} s (summed over {_workers(len(report.workers))}).",
    ]
    for w in report.workers:
        lines.append(
            f"  {w.worker}: {w.batches} batch{'' if w.batches == 1 else 'es'}, {w.chunks:,} chunks "
            f"({w.added:,} embedded), {w.chunks_per_second:.1f} chunks/s busy, {w.embedded_per_second:.1f} embedded/s"
        )
    return "\n".join(lines)
