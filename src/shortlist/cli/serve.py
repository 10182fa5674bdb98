"""``shortlist serve``: the HTTP service (:mod:`shortlist.server`), started with uvicorn."""

from __future__ import annotations

import click

from shortlist.cli.group import cli
from shortlist.cli.options import Database, EncoderSettings, encoder_options, store_options

__all__ = ["serve"]


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(1, 65535), default=11434, show_default=True, help="TCP port (Ollama's).")
@store_options
@encoder_options
@click.option("--max-batch", type=click.IntRange(1, 1024), default=64, show_default=True, help="Texts per model call.")
@click.option(
    "--batching/--no-batching", default=True, show_default=True, help="Combine concurrent requests into batches."
)
@click.option("--log-level", type=click.Choice(("critical", "error", "warning", "info", "debug")), default="info")
def serve(
    host: str,
    port: int,
    db: Database,
    collection: str,
    settings: EncoderSettings,
    max_batch: int,
    batching: bool,
    log_level: str,
) -> None:
    """Serve embeddings (Ollama- and OpenAI-compatible), similarity and search over HTTP, with a web page at /.

    Set SHORTLIST_API_KEY to require 'Authorization: Bearer <key>' on every API request. Needs the server extra:
    pip install 'shortlist[server]'. Several workers can share one Chroma server (--chroma-url); while it is down
    searches answer 503, and they recover by themselves when it is back.

    \b
    Example:
      shortlist serve --collection notes
      curl -s localhost:11434/api/embed -d '{"model": "all-minilm", "input": "hello"}'
      shortlist serve --port 11435 --collection notes --chroma-url http://127.0.0.1:8000
    """  # noqa: D301
    from shortlist.server import run  # lazy: `import shortlist.cli` stays free of fastapi

    run(
        host,
        port,
        encoder=settings.encoder(),
        db=db.path,
        chroma=db.server,
        collection=collection,
        batching=batching,
        max_batch=max_batch,
        log_level=log_level,
    )
