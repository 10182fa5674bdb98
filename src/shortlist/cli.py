"""The ``shortlist`` command (also ``python -m shortlist``).

Commands: ``index`` (files and folders into a Chroma collection), ``query`` (a question's shortlist), ``eval`` (a
BEIR-style dataset's retrieval figures), ``similarity`` (two texts' cosine similarity), ``info`` (model, backend,
collections), ``demo`` (the pre-filter over Python's own documentation) and ``export`` (the ONNX files of
the onnx backends, ahead of first use).

Every command loads its heavy dependencies (torch, Chroma) only when it runs, so ``shortlist --help`` is instant.
Errors raised by shortlist (:class:`~shortlist.errors.ShortlistError`) become one line on stderr and exit code 1;
usage mistakes exit with code 2. Add a command with ``@cli.command()`` and the shared option decorators
(:func:`encoder_options`, :func:`store_options`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from shortlist import __version__
from shortlist.config import (
    DEFAULT_K,
    DEFAULT_MODE,
    ENV_BACKEND,
    ENV_CHROMA_PATH,
    ENV_DEVICE,
    ENV_MODEL,
    resolve_chroma_path,
)
from shortlist.errors import ShortlistError

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.prefilter import Prefilter, SearchMode
    from shortlist.types import Shortlist

__all__ = ["cli", "main"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_COLLECTION = "shortlist"
BACKENDS = ("torch", "onnx", "onnx-int8")
MODES = ("dense", "keyword", "hybrid")


# ---------------------------------------------------------------------------------------------------- errors
def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class ShortlistGroup(click.Group):
    """A click group that turns shortlist's own errors into one-line :class:`click.ClickException` messages."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a :class:`ShortlistError` (or Chroma's own error) becomes ``Error: <one line>``."""
        try:
            return super().invoke(ctx)
        except ShortlistError as exc:
            raise click.ClickException(_one_line(exc)) from exc
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("chromadb"):
                msg = f"Chroma: {_one_line(exc)}"
                raise click.ClickException(msg) from exc
            raise


# ---------------------------------------------------------------------------------------------------- options
@dataclass
class EncoderSettings:
    """The encoder the user asked for; ``None`` fields fall back to the environment, then the defaults."""

    model: str | None = None
    backend: str | None = None
    device: str | None = None

    def encoder(self) -> Encoder:
        """The process's shared encoder for these settings (not loaded yet)."""
        from shortlist.encoder import Encoder

        return Encoder.shared(self.model, device=self.device, backend=self.backend)


def encoder_options(func: F) -> F:
    """Add ``--model``, ``--backend`` and ``--device`` (each with its ``SHORTLIST_*`` variable) as ``settings``."""

    @click.option(
        "--model",
        envvar=ENV_MODEL,
        show_envvar=True,
        metavar="NAME_OR_DIR",
        help="Embedding model: a local sentence-transformers folder (default: the packaged all-MiniLM-L6-v2).",
    )
    @click.option(
        "--backend",
        envvar=ENV_BACKEND,
        show_envvar=True,
        type=click.Choice(BACKENDS),
        help="Inference backend (default: onnx on the CPU for a mean-pooled local model, else torch).",
    )
    @click.option("--device", envvar=ENV_DEVICE, show_envvar=True, help="Torch device (default: cpu).")
    @functools.wraps(func)
    def wrapper(*args: Any, model: str | None, backend: str | None, device: str | None, **kwargs: Any) -> Any:
        return func(*args, settings=EncoderSettings(model or None, backend or None, device or None), **kwargs)

    return wrapper  # type: ignore[return-value]


def store_options(func: F) -> F:
    """Add ``--db`` (``SHORTLIST_CHROMA_PATH``) and ``--collection`` as ``db`` (a resolved Path) and ``collection``."""

    @click.option(
        "--db",
        envvar=ENV_CHROMA_PATH,
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder of the embedded Chroma database (default: ~/.local/share/shortlist/chroma).",
    )
    @click.option(
        "--collection", "-c", default=DEFAULT_COLLECTION, show_default=True, help="Name of the Chroma collection."
    )
    @functools.wraps(func)
    def wrapper(*args: Any, db: Path | None, collection: str, **kwargs: Any) -> Any:
        return func(*args, db=resolve_chroma_path(db), collection=collection, **kwargs)

    return wrapper  # type: ignore[return-value]


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _collection_sizes(db: Path) -> dict[str, int] | None:
    """Collections of the embedded database at ``db`` with their chunk counts; ``None`` if there is none yet."""
    if not db.is_dir() or not any(db.iterdir()):
        return None
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(db), settings=Settings(anonymized_telemetry=False))
    sizes = {}
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        sizes[name] = client.get_collection(name).count()
    return dict(sorted(sizes.items()))


def _require_collection(db: Path, collection: str) -> None:
    """Fail with one line (naming the command that builds it) if the collection does not exist yet."""
    sizes = _collection_sizes(db)
    if sizes is None or collection not in sizes:
        have = f" (it has: {', '.join(sizes)})" if sizes else ""
        msg = (
            f"No collection {collection!r} in {db}{have}. "
            f"Build it first: shortlist index PATH --collection {collection} --db {db}"
        )
        raise click.ClickException(msg)


def _open_prefilter(db: Path, collection: str, settings: EncoderSettings, **kwargs: Any) -> Prefilter:
    from shortlist.prefilter import Prefilter

    return Prefilter(collection, path=db, encoder=settings.encoder(), **kwargs)


# ---------------------------------------------------------------------------------------------------- the group
@click.group(cls=ShortlistGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="shortlist")
@click.option("-v", "--verbose", count=True, help="Log progress (-v: info, -vv: debug) to stderr.")
def cli(verbose: int) -> None:
    """Shortlist: a small, fast, offline retrieval pre-filter on all-MiniLM-L6-v2 and Chroma.

    \b
    Start with the demo, then index your own files:
      shortlist demo
      shortlist index docs/ --collection notes
      shortlist query "how do I rotate the logs?" --collection notes -k 5
    """  # noqa: D301
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )


# ---------------------------------------------------------------------------------------------------- similarity
@cli.command()
@click.argument("text_a", metavar="A")
@click.argument("text_b", metavar="B")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of the number.")
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
        _echo_json({"a": text_a, "b": text_b, "similarity": round(score, 6), "model": encoder.model_name})
    else:
        click.echo(f"{score:.4f}")
    logger.info("similarity computed in %.0f ms", ms)


# ---------------------------------------------------------------------------------------------------- info
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@encoder_options
@click.option(
    "--db",
    envvar=ENV_CHROMA_PATH,
    show_envvar=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the embedded Chroma database (default: ~/.local/share/shortlist/chroma).",
)
def info(as_json: bool, settings: EncoderSettings, db: Path | None) -> None:
    """Show the model, where its weights were found, the backend, the device and the collections."""
    encoder = settings.encoder()
    path = resolve_chroma_path(db)
    sizes = _collection_sizes(path)
    data: dict[str, Any] = {
        "version": __version__,
        "model": encoder.model_name,
        "weights": encoder.source.location,
        "weights_from": encoder.source.origin,
        "backend": encoder.backend_name,
        "device": encoder.device,
        "dimension": encoder.dimension,
        "max_tokens": encoder.max_tokens,
        "db": str(path),
        "collections": sizes or {},
    }
    if as_json:
        _echo_json(data)
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        if key == "collections":
            continue
        click.echo(f"{key:<{width}}  {value}")
    if sizes is None:
        click.echo(f"{'collections':<{width}}  none yet (no database at {path})")
    elif not sizes:
        click.echo(f"{'collections':<{width}}  none")
    else:
        click.echo(f"{'collections':<{width}}  {len(sizes)}")
        for name, count in sizes.items():
            click.echo(f"  {name:<{width}}  {count:,} chunks")


# ---------------------------------------------------------------------------------------------------- index
@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@store_options
@encoder_options
@click.option("--text-field", default="text", show_default=True, help="Field holding the text in .jsonl files.")
@click.option("--chunk-tokens", type=click.IntRange(16, 254), default=128, show_default=True, help="Chunk size.")
@click.option("--overlap", type=click.IntRange(0, 128), default=16, show_default=True, help="Chunk overlap.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Chunks per batch.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def index(
    paths: tuple[Path, ...],
    db: Path,
    collection: str,
    settings: EncoderSettings,
    text_field: str,
    chunk_tokens: int,
    overlap: int,
    batch_size: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Index files and folders (.txt, .md, .jsonl, BEIR corpus folders) into a collection.

    Re-running on the same files adds nothing: chunk ids are stable.

    \b
    Example:
      shortlist index notes/ faq.jsonl --collection notes
    """  # noqa: D301
    from shortlist.corpus import read_documents

    if overlap >= chunk_tokens:
        msg = f"--overlap ({overlap}) must be smaller than --chunk-tokens ({chunk_tokens})."
        raise click.UsageError(msg)
    started = time.perf_counter()
    docs = [d.as_dict() for d in read_documents(paths, text_field=text_field)]
    if not docs:
        msg = f"Nothing to index in {', '.join(map(str, paths))}: no non-empty .txt, .md or .jsonl files."
        raise click.ClickException(msg)
    prefilter = _open_prefilter(db, collection, settings, chunk_tokens=chunk_tokens, chunk_overlap=overlap)
    show = sys.stderr.isatty() if progress is None else progress
    with ingest_progress(len(docs), enabled=show) as callback:
        report = prefilter.add_documents(docs, batch_size=batch_size, progress=callback)
    # The keyword index and the hybrid calibration, now rather than on the first query (hybrid is the default mode).
    prefilter.calibration()
    seconds = time.perf_counter() - started
    summary = _report_dict(report)
    summary.update(collection=collection, db=str(db), seconds=round(seconds, 2), total_chunks=prefilter.count())
    if as_json:
        _echo_json(summary)
        return
    click.echo(_report_line(summary))


@contextlib.contextmanager
def ingest_progress(total: int, *, enabled: bool, desc: str = "indexing") -> Iterator[Callable[[Any], None] | None]:
    """A tqdm bar on stderr over ``total`` documents, as a ``progress`` callback for ``Prefilter.add_documents``.

    Yields ``None`` when not ``enabled``.
    """
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="doc", file=sys.stderr, dynamic_ncols=True)

    def update(report: Any) -> None:
        bar.update(int(report.documents) - bar.n)
        bar.set_postfix(chunks=int(report.chunks), new=int(report.added), refresh=False)

    try:
        yield update
    finally:
        bar.close()


def _report_dict(report: Any) -> dict[str, Any]:
    """The IngestReport's public figures as a dict."""
    if hasattr(report, "as_dict"):
        return dict(report.as_dict())
    from dataclasses import asdict, is_dataclass

    if is_dataclass(report) and not isinstance(report, type):
        return asdict(report)
    return {k: v for k, v in vars(report).items() if not k.startswith("_")}


def _report_line(s: dict[str, Any]) -> str:
    docs = s.get("documents", 0)
    chunks = s.get("chunks", 0)
    added = s.get("added", s.get("new_chunks"))
    tokens = s.get("tokens", 0)
    parts = [f"Indexed {docs:,} documents: {chunks:,} chunks, {tokens:,} tokens in {s['seconds']:.1f} s"]
    if added is not None:
        parts.append(f"{added:,} new, {max(chunks - added, 0):,} already there")
    parts.append(f"collection {s['collection']!r} now holds {s['total_chunks']:,} chunks ({s['db']})")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------------- query
def _parse_where(value: str | None, option: str) -> dict[str, Any] | None:
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


def shortlist_dict(result: Shortlist) -> dict[str, Any]:
    """A :class:`~shortlist.types.Shortlist` as plain JSON-ready data (the shape of ``shortlist query --json``)."""
    stats = result.stats
    return {
        "query": result.query,
        "hits": [
            {
                "rank": h.rank,
                "id": h.id,
                "score": None if h.score is None else round(float(h.score), 6),
                "source": str(h.metadata.get("source", h.id)),
                "text": h.text,
                "metadata": {k: v for k, v in h.metadata.items()},
            }
            for h in result.hits
        ],
        "stats": {
            "chunks_total": stats.chunks_total,
            "candidates": stats.candidates,
            "corpus_tokens": stats.corpus_tokens,
            "kept_tokens": stats.kept_tokens,
            "saved_share": round(stats.saved_share, 6),
            "timings_ms": {k: round(float(v), 3) for k, v in stats.timings_ms.items()},
        },
    }


def _snippet(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 1)] + "…"


def format_shortlist(result: Shortlist, *, width: int | None = None) -> str:
    """The shortlist as a text table (rank, score, source, snippet) followed by its stats line."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    lines = []
    if not result.hits:
        lines.append("(no chunk cleared the threshold: nothing to send to the LLM)")
    else:
        sources = [str(h.metadata.get("source", h.id)) for h in result.hits]
        src_w = min(max(len("source"), *(len(s) for s in sources)), 36)
        snip_w = max(width - (4 + 2 + 6 + 2 + src_w + 2), 20)
        lines.append(f"{'#':>4}  {'cosine':>6}  {'source':<{src_w}}  snippet")
        for hit, source in zip(result.hits, sources, strict=True):
            score = "   n/a" if hit.score is None else f"{hit.score:6.3f}"
            src = source if len(source) <= src_w else "…" + source[-(src_w - 1) :]
            lines.append(f"{hit.rank:>4}  {score}  {src:<{src_w}}  {_snippet(hit.text, snip_w)}")
    lines.append(stats_line(result))
    return "\n".join(lines)


def stats_line(result: Shortlist) -> str:
    """One line of figures: chunks searched, tokens kept against the corpus, share saved, milliseconds."""
    s = result.stats
    total_ms = s.timings_ms.get("total")
    ms = f" · {total_ms:.0f} ms" if total_ms is not None else ""
    return (
        f"searched {s.chunks_total:,} chunks ({s.candidates:,} candidates) · kept {len(result.hits)} chunks, "
        f"{s.kept_tokens:,} of {s.corpus_tokens:,} tokens · {s.saved_share:.2%} saved{ms}"
    )


@cli.command()
@click.argument("question")
@store_options
@encoder_options
@click.option("-k", "k", type=click.IntRange(1, 1000), default=DEFAULT_K, show_default=True, help="Hits to keep.")
@click.option("--min-score", type=click.FloatRange(-1.0, 1.0), help="Drop hits under this cosine similarity.")
@click.option("--hybrid", is_flag=True, help="Same as --mode hybrid (the default).")
@click.option("--mode", type=click.Choice(MODES), help="Retrieval mode (default: hybrid).")
@click.option("--where", "where_json", metavar="JSON", help='Metadata filter, e.g. \'{"kind": "topic"}\'.')
@click.option("--where-document", "where_doc_json", metavar="JSON", help='Text filter, e.g. \'{"$contains": "json"}\'.')
@click.option("--budget", type=click.IntRange(1), metavar="TOKENS", help="Keep the best hits within this many tokens.")
@click.option("--mmr", is_flag=True, help="Diversify the hits (maximal marginal relevance).")
@click.option("--max-per-source", type=click.IntRange(1), help="At most this many chunks from one document.")
@click.option("--json", "as_json", is_flag=True, help="Print the shortlist as JSON.")
def query(
    question: str,
    db: Path,
    collection: str,
    settings: EncoderSettings,
    k: int,
    min_score: float | None,
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
    where = _parse_where(where_json, "--where")
    where_document = _parse_where(where_doc_json, "--where-document")
    _require_collection(db, collection)
    prefilter = _open_prefilter(db, collection, settings)
    result = prefilter.search(
        question,
        k=k,
        min_score=min_score,
        where=where,
        where_document=where_document,
        mode=cast("SearchMode", "hybrid" if hybrid else (mode or DEFAULT_MODE)),
        mmr=mmr,
        max_per_source=max_per_source,
        budget=budget,
    )
    if as_json:
        _echo_json(shortlist_dict(result))
    else:
        click.echo(format_shortlist(result))


# ---------------------------------------------------------------------------------------------------- eval
def _parse_ks(value: str, option: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(part) for part in value.split(",") if part.strip()}))
    except ValueError as exc:
        msg = f"{option} takes cut-offs such as 1,3,10; got {value!r}."
        raise click.BadParameter(msg, param_hint=option) from exc
    if not ks or ks[0] < 1:
        msg = f"{option} takes positive cut-offs such as 1,3,10; got {value!r}."
        raise click.BadParameter(msg, param_hint=option)
    return ks


@cli.command("eval")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@encoder_options
@click.option(
    "--db",
    envvar=ENV_CHROMA_PATH,
    show_envvar=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the embedded Chroma database that keeps the dataset's index (reused by later runs).",
)
@click.option("--collection", "-c", help="Collection for the dataset's index (default: eval-<dataset>-<chunk tokens>).")
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
@click.option("--chunk-tokens", type=click.IntRange(16, 254), default=128, show_default=True, help="Chunk size.")
@click.option("--max-queries", type=click.IntRange(1), help="Evaluate a fixed random sample of N queries (quick).")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv of a BEIR folder.")
@click.option("--progress/--no-progress", default=None, help="Progress bar while indexing (default: on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def eval_(
    dataset_dir: Path,
    settings: EncoderSettings,
    db: Path | None,
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
    cutoffs = _parse_ks(ks, "-k")
    sizes = _parse_ks(shortlist_ks, "--shortlist-k")
    root = dataset_dir
    if (root / "corpus.jsonl").is_file():
        dataset = ev.load_beir(root, split)
    else:
        dataset = ev.load_dataset(root)
    if max_queries is not None and max_queries < len(dataset.queries):
        dataset = dataset.subset(max_queries)
    name = collection or _collection_name(f"eval-{dataset.name}-{chunk_tokens}")
    path = resolve_chroma_path(db)
    prefilter = _open_prefilter(path, name, settings, chunk_tokens=chunk_tokens)
    started = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    with ingest_progress(len(dataset.corpus), enabled=show) as callback:
        ingest = ev.index_dataset(prefilter, dataset, progress=callback)
    ingest_s = time.perf_counter() - started
    one = cast("SearchMode", mode or DEFAULT_MODE)
    modes: tuple[SearchMode, ...] = ("dense", "keyword", "hybrid") if hybrid else (one,)
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
        "db": str(path),
        "model": prefilter.encoder.model_name,
    }
    if as_json:
        _echo_json(
            {
                **header,
                "retrieval": {r.name: _eval_dict(r) for r in reports},
                "shortlist": {r.name: _shortlist_report_dict(r) for r in shortlists},
            }
        )
        return
    verb = "indexed" if ingest.added else "reused the index"
    click.echo(
        f"{dataset.name}: {header['documents']:,} documents, {header['queries']:,} queries -> "
        f"{header['chunks']:,} chunks of <= {chunk_tokens} tokens, {header['corpus_tokens']:,} corpus tokens "
        f"({verb}: {ingest.added:,} chunks embedded in {ingest_s:.1f} s; collection {name!r} in {path})"
    )
    click.echo(f"\nRetrieval of documents ({header['model']}):")
    click.echo(_eval_table(reports))
    for rep in shortlists:
        click.echo(
            f"\nShortlist of k chunks ({rep.name}): is the gold document in it, and what share of the corpus is sent"
        )
        click.echo(f"{'k':>5}  {'gold in shortlist':>17}  {'tokens sent':>11}  {'tokens saved':>12}")
        for k in sorted(rep.gold_in_shortlist):
            sent = rep.tokens_sent[k]
            click.echo(f"{k:>5}  {rep.gold_in_shortlist[k]:>17.3f}  {sent:>11.3%}  {1 - sent:>12.3%}")
        lat = rep.latency_ms
        click.echo(f"search latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")


def _collection_name(raw: str) -> str:
    """A valid Chroma collection name from any text (3-63 characters of [a-zA-Z0-9._-])."""
    import re

    name = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-._") or "eval"
    return (name + "---")[: max(3, min(len(name), 63))]


def _eval_dict(report: Any) -> dict[str, Any]:
    return {
        "queries": report.queries,
        "ndcg@10": round(report.ndcg10, 4),
        "top1": round(report.top1, 4),
        "recall": {str(k): round(v, 4) for k, v in sorted(report.recall.items())},
        "mrr": {str(k): round(v, 4) for k, v in sorted(report.mrr.items())},
        "latency_ms": {k: round(v, 2) for k, v in report.latency_ms.items()},
    }


def _shortlist_report_dict(report: Any) -> dict[str, Any]:
    return {
        "queries": report.queries,
        "gold_in_shortlist": {str(k): round(v, 4) for k, v in sorted(report.gold_in_shortlist.items())},
        "tokens_sent": {str(k): round(v, 6) for k, v in sorted(report.tokens_sent.items())},
        "latency_ms": {k: round(v, 2) for k, v in report.latency_ms.items()},
    }


def _eval_table(reports: Sequence[Any]) -> str:
    ks = sorted(reports[0].recall)
    head = f"{'mode':<8}  {'nDCG@10':>7}  {'Top-1':>5}  " + "  ".join(f"{'R@' + str(k):>6}" for k in ks)
    head += "  " + "  ".join(f"{'MRR@' + str(k):>7}" for k in ks) + f"  {'p50 ms':>7}"
    lines = [head]
    for r in reports:
        row = f"{r.name:<8}  {r.ndcg10:>7.4f}  {r.top1:>5.3f}  " + "  ".join(f"{r.recall[k]:>6.3f}" for k in ks)
        row += "  " + "  ".join(f"{r.mrr[k]:>7.3f}" for k in ks) + f"  {r.latency_ms['p50']:>7.1f}"
        lines.append(row)
    lines.append(f"({reports[0].queries} queries)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- demo
@cli.command()
@click.option(
    "--db",
    envvar=ENV_CHROMA_PATH,
    show_envvar=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the embedded Chroma database (default: ~/.local/share/shortlist/chroma).",
)
@click.option("--collection", "-c", default="python-docs", show_default=True, help="Collection for the demo.")
@click.option("--rebuild", is_flag=True, help="Delete and rebuild the demo collection.")
@click.option("--limit", type=click.IntRange(1), help="Index only the first N documents (a quick try).")
@click.option("--question", "questions", multiple=True, help="Ask this instead of the built-in questions.")
@click.option("-k", "k", type=click.IntRange(1, 50), default=3, show_default=True, help="Hits per question.")
@encoder_options
def demo(
    db: Path | None,
    collection: str,
    rebuild: bool,
    limit: int | None,
    questions: tuple[str, ...],
    k: int,
    settings: EncoderSettings,
) -> None:
    """Index Python's own documentation (offline) and print the shortlists of a few real questions."""
    from shortlist import demo as demo_module

    demo_module.run(
        db=db,
        collection=collection,
        rebuild=rebuild,
        limit=limit,
        questions=list(questions) or None,
        k=k,
        encoder=settings.encoder(),
    )


# ---------------------------------------------------------------------------------------------------- serve
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
    db: Path,
    collection: str,
    settings: EncoderSettings,
    max_batch: int,
    batching: bool,
    log_level: str,
) -> None:
    """Serve embeddings (Ollama- and OpenAI-compatible), similarity and search over HTTP, with a web page at /.

    Set SHORTLIST_API_KEY to require 'Authorization: Bearer <key>' on every API request. Needs the server extra:
    pip install 'shortlist[server]'.

    \b
    Example:
      shortlist serve --collection notes
      curl -s localhost:11434/api/embed -d '{"model": "all-minilm", "input": "hello"}'
    """  # noqa: D301
    from shortlist.server import run  # lazy: `import shortlist.cli` stays free of fastapi

    run(
        host,
        port,
        encoder=settings.encoder(),
        db=db,
        collection=collection,
        batching=batching,
        max_batch=max_batch,
        log_level=log_level,
    )


# ---------------------------------------------------------------------------------------------------- export
@cli.command()
@click.option(
    "--model",
    envvar=ENV_MODEL,
    show_envvar=True,
    metavar="DIR",
    help="A local sentence-transformers folder (default: the packaged all-MiniLM-L6-v2).",
)
@click.option("--fp32-only", is_flag=True, help="Export the float32 graph only (skip the int8 one).")
@click.option("--force", is_flag=True, help="Export again even if the cached files exist.")
@click.option("--json", "as_json", is_flag=True, help="Print the paths as JSON.")
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
        _echo_json(done)


# ---------------------------------------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``shortlist`` command; returns the exit code (0 ok, 1 error, 2 usage error)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="shortlist", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
