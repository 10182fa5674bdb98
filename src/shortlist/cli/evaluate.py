"""``shortlist eval``: a dataset's retrieval figures and the tokens a shortlist saves."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from shortlist.cli.database import open_prefilter
from shortlist.cli.group import cli
from shortlist.cli.options import (
    MODES,
    Database,
    EncoderSettings,
    chunk_tokens_option,
    collection_option,
    database_options,
    encoder_options,
    json_option,
    progress_option,
)
from shortlist.cli.render import echo_json, eval_dict, eval_text, shortlist_report_dict
from shortlist.config import DEFAULT_MODE
from shortlist.console import ingest_progress
from shortlist.search.options import SEARCH_MODES

if TYPE_CHECKING:
    from shortlist.config import SearchMode

__all__ = ["collection_name", "eval_", "parse_ks"]


def parse_ks(value: str, option: str) -> tuple[int, ...]:
    """Sorted, distinct positive cut-offs from ``"1,3,10"``; anything else is a usage error naming ``option``."""
    try:
        ks = tuple(sorted({int(part) for part in value.split(",") if part.strip()}))
    except ValueError as exc:
        msg = f"{option} takes cut-offs such as 1,3,10; got {value!r}."
        raise click.BadParameter(msg, param_hint=option) from exc
    if not ks or ks[0] < 1:
        msg = f"{option} takes positive cut-offs such as 1,3,10; got {value!r}."
        raise click.BadParameter(msg, param_hint=option)
    return ks


def collection_name(raw: str) -> str:
    """A valid Chroma collection name from any text (3-63 characters of [a-zA-Z0-9._-])."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-._") or "eval"
    return (name + "---")[: max(3, min(len(name), 63))]


@cli.command("eval")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@encoder_options
@database_options(help="Folder of the embedded Chroma database that keeps the dataset's index (reused by later runs).")
@collection_option(default=None, help="Collection for the dataset's index (default: eval-<dataset>-<chunk tokens>).")
@click.option("--hybrid", is_flag=True, help="Compare all three modes: dense, keyword (BM25) and hybrid.")
@click.option("--mode", type=click.Choice(MODES), help="Evaluate this one mode (default: hybrid).")
@click.option("-k", "ks", default="1,10,100", show_default=True, metavar="K[,K...]", help="Recall/MRR cut-offs.")
@click.option(
    "--shortlist-k",
    "shortlist_ks",
    default="1,3,5,10,20",
    show_default=True,
    metavar="K[,K...]",
    help="Shortlist sizes (in chunks) for the tokens-saved table.",
)
@chunk_tokens_option
@click.option("--max-queries", type=click.IntRange(1), help="Evaluate a fixed random sample of N queries (quick).")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv of a BEIR folder.")
@progress_option("Progress bar while indexing (default: on a terminal).")
@json_option("Print the figures as JSON.")
def eval_(
    dataset_dir: Path,
    settings: EncoderSettings,
    db: Database,
    collection: str | None,
    hybrid: bool,
    mode: str | None,
    ks: str,
    shortlist_ks: str,
    chunk_tokens: int,
    max_queries: int | None,
    split: str,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Evaluate the pre-filter on a dataset folder: BEIR (corpus.jsonl, queries.jsonl, qrels/test.tsv), SQuAD 2.0
    passages or StackFAQ.

    Indexes the corpus once (kept in --db, reused by later runs), then prints nDCG@10, Top-1, Recall@k, MRR@k and
    latency for one retrieval mode (--mode, default hybrid) or all three (--hybrid), and how much of the corpus's
    tokens a shortlist of k chunks sends to an LLM while keeping the gold document.

    \b
    Example:
      shortlist eval ../shared/data/beir_scifact --hybrid
    """  # noqa: D205, D301
    from shortlist import evaluate as ev

    if hybrid and mode is not None:
        msg = f"--hybrid (all three modes) and --mode {mode} contradict each other: give one of them."
        raise click.UsageError(msg)
    cutoffs = parse_ks(ks, "-k")
    sizes = parse_ks(shortlist_ks, "--shortlist-k")
    root = dataset_dir
    if (root / "corpus.jsonl").is_file():
        dataset = ev.load_beir(root, split)
    else:
        dataset = ev.load_dataset(root)
    if max_queries is not None and max_queries < len(dataset.queries):
        dataset = dataset.subset(max_queries)
    name = collection or collection_name(f"eval-{dataset.name}-{chunk_tokens}")
    prefilter = open_prefilter(db, name, settings, chunk_tokens=chunk_tokens)
    started = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    with ingest_progress(len(dataset.corpus), enabled=show) as callback:
        ingest = ev.index_dataset(prefilter, dataset, progress=callback)
    ingest_s = time.perf_counter() - started
    one = cast("SearchMode", mode or DEFAULT_MODE)
    modes: tuple[SearchMode, ...] = SEARCH_MODES if hybrid else (one,)
    if modes != ("dense",):
        prefilter.calibration()  # the keyword index and the hybrid calibration, built before the timings
    reports = [ev.evaluate(ev.prefilter_retriever(prefilter, mode=m), dataset, ks=cutoffs, name=m) for m in modes]
    shortlists = [ev.prefilter_report(prefilter, dataset, ks=sizes, mode=m, name=m) for m in modes if m != "keyword"]
    header = {
        "dataset": dataset.name,
        "path": str(root),
        "documents": len(dataset.corpus),
        "queries": len(dataset.queries),
        "chunks": prefilter.count(),
        "chunk_tokens": chunk_tokens,
        "corpus_tokens": prefilter.corpus_tokens(),
        "embedded": ingest.added,
        "index_seconds": round(ingest_s, 2),
        "collection": name,
        "db": str(db),
        "model": prefilter.encoder.model_name,
    }
    if as_json:
        echo_json(
            {
                **header,
                "retrieval": {r.name: eval_dict(r) for r in reports},
                "shortlist": {r.name: shortlist_report_dict(r) for r in shortlists},
            }
        )
        return
    click.echo(eval_text(header, reports, shortlists, index_seconds=ingest_s))
