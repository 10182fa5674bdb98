"""The model's commands: ``similarity``, ``info`` (model, backend, collections) and ``export`` (ONNX files)."""

from __future__ import annotations

import logging
import time
from typing import Any

import click

from shortlist import __version__
from shortlist.cli.database import collection_sizes
from shortlist.cli.group import cli
from shortlist.cli.options import (
    Database,
    EncoderSettings,
    database_options,
    encoder_options,
    json_option,
    model_option,
)
from shortlist.cli.render import echo_json, info_lines

__all__ = ["export", "info", "similarity"]

logger = logging.getLogger(__name__)


@cli.command()
@click.argument("text_a", metavar="A")
@click.argument("text_b", metavar="B")
@json_option("Print a JSON object instead of the number.")
@encoder_options
def similarity(text_a: str, text_b: str, as_json: bool, settings: EncoderSettings) -> None:
    """Print the cosine similarity of two texts, in [-1, 1].

    \b
    Example:
      shortlist similarity "How do I read a file?" "Open the file and iterate over its lines."
    """  # noqa: D301
    for name, text in (("A", text_a), ("B", text_b)):
        if not text.strip():
            msg = f"{name} is empty: give two non-empty texts."
            raise click.BadParameter(msg, param_hint=name)
    encoder = settings.encoder()
    started = time.perf_counter()
    score = encoder.similarity(text_a, text_b)
    ms = (time.perf_counter() - started) * 1000
    if as_json:
        echo_json({"a": text_a, "b": text_b, "similarity": round(score, 6), "model": encoder.model_name})
    else:
        click.echo(f"{score:.4f}")
    logger.info("similarity computed in %.0f ms", ms)


@cli.command()
@json_option("Print a JSON object.")
@encoder_options
@database_options()
def info(as_json: bool, settings: EncoderSettings, db: Database) -> None:
    """Show the model, where its weights were found, the backend, the device and the collections."""
    encoder = settings.encoder()
    sizes = collection_sizes(db)
    data: dict[str, Any] = {
        "version": __version__,
        "model": encoder.model_name,
        "weights": encoder.source.location,
        "weights_from": encoder.source.origin,
        "backend": encoder.backend_name,
        "device": encoder.device,
        "dimension": encoder.dimension,
        "max_tokens": encoder.max_tokens,
        "db": str(db),
        "collections": sizes or {},
    }
    if as_json:
        echo_json(data)
        return
    for line in info_lines(data, sizes, str(db)):
        click.echo(line)


@cli.command()
@model_option(metavar="DIR", help="A local sentence-transformers folder (default: the packaged all-MiniLM-L6-v2).")
@click.option("--fp32-only", is_flag=True, help="Export the float32 graph only (skip the int8 one).")
@click.option("--force", is_flag=True, help="Export again even if the cached files exist.")
@json_option("Print the paths as JSON.")
def export(model: str | None, fp32_only: bool, force: bool, as_json: bool) -> None:
    """Export the model to ONNX (float32 and int8) for the onnx backends, once, into the user cache.

    The files are made from the local weights (nothing is downloaded) and kept under a folder named by the
    weights' hash; the onnx backends export on first use anyway, this just does it ahead of time.

    \b
    Example:
      shortlist export
      shortlist query "..." --backend onnx-int8
    """  # noqa: D301
    from shortlist.model import resolve_model
    from shortlist.onnx_export import export_onnx, onnx_model_path

    source = resolve_model(model or None)
    if source.path is None:
        msg = f"Model {source.name!r} is not a local folder: give --model a sentence-transformers folder."
        raise click.UsageError(msg)
    done: dict[str, Any] = {"model": source.name, "weights": str(source.path)}
    for kind, quantized in (("fp32", False), ("int8", True)):
        if quantized and fp32_only:
            continue
        existed = onnx_model_path(source.path, quantized=quantized).is_file()
        started = time.perf_counter()
        path = export_onnx(source.path, quantized=quantized, force=force)
        seconds = time.perf_counter() - started
        fresh = force or not existed
        mb = round(path.stat().st_size / 1e6, 1)
        done[kind] = {"path": str(path), "exported": fresh, "seconds": round(seconds, 2), "mb": mb}
        if not as_json:
            verb = f"exported in {seconds:.1f} s" if fresh else "already cached"
            click.echo(f"{kind}: {path} ({mb:.0f} MB, {verb})")
    if as_json:
        echo_json(done)
