"""The main job behind ``make demo`` (also ``shortlist demo`` and ``python -m shortlist.demo``).

This package is the job and imports only the core; its command line is the CLI's ``shortlist demo``, which
``python -m shortlist.demo`` (:mod:`shortlist.demo.__main__`) runs.

It builds, once, an embedded Chroma index of Python's own documentation (the :mod:`pydoc_data.topics` help texts and
the docstrings of common standard-library modules, see :mod:`shortlist.corpus`), offline, in the default data folder;
then it asks a handful of real questions and prints each shortlist with its figures and the tokens saved against
sending the whole corpus to an LLM. A second run finds the finished index and goes straight to the questions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from shortlist._io import atomic_write
from shortlist.config import DEFAULT_MODE, resolve_chroma_path
from shortlist.console import format_shortlist, ingest_progress
from shortlist.search.options import SUGGESTED_MIN_RELEVANCE

if TYPE_CHECKING:
    from shortlist.corpus import CorpusDocument
    from shortlist.encoder import Encoder
    from shortlist.prefilter import Prefilter
    from shortlist.types import Shortlist

__all__ = ["DEMO_COLLECTION", "QUESTIONS", "DemoQuestion", "build_index", "run"]

logger = logging.getLogger(__name__)

#: The demo's collection in the default embedded database.
DEMO_COLLECTION = "python-docs"
CHUNK_TOKENS = 128
CHUNK_OVERLAP = 16


@dataclass(frozen=True)
class DemoQuestion:
    """A demo question, how to search for it, and the documents a person would expect at the top.

    Attributes:
        text: The question.
        mode: ``"hybrid"`` (default), ``"dense"`` or ``"keyword"``.
        expected: Ids of documents (``topic:...``/``doc:...``) that answer it, checked by hand.
        note: Why this mode, shown under the question.
    """

    text: str
    mode: str = DEFAULT_MODE
    expected: tuple[str, ...] = ()
    note: str = ""


#: The built-in questions. Their expected documents were checked by reading them.
QUESTIONS: tuple[DemoQuestion, ...] = (
    DemoQuestion(
        "How do I catch several exceptions in one except clause?",
        expected=("topic:try", "topic:exceptions"),
    ),
    DemoQuestion(
        "How do I read a file line by line?",
        expected=("doc:io.",),
        note="any of the io module's file objects (their readline/readlines/iteration) answers it",
    ),
    DemoQuestion(
        "How do I parse a JSON string into a Python dictionary?",
        expected=("doc:json.loads", "doc:json", "doc:json.JSONDecoder"),
    ),
    DemoQuestion(
        "How can I run a shell command and capture its output?",
        expected=("doc:subprocess.run", "doc:subprocess.check_output", "doc:subprocess.getoutput", "doc:subprocess"),
    ),
    DemoQuestion(
        "How do I write my own context manager for the with statement?",
        expected=("topic:with", "topic:context-managers", "doc:contextlib.contextmanager", "doc:contextlib"),
    ),
    DemoQuestion(
        "如何在一个 except 子句中捕获多个异常？",
        expected=("topic:try", "topic:exceptions"),
        note="all-MiniLM-L6-v2 reads little Chinese (dense search alone puts topic:strings first); the hybrid "
        "search gives a Chinese query mostly to the keyword side (jieba + BM25), which matches 'except'",
    ),
    DemoQuestion(
        "如何用 json.loads 把 JSON 字符串解析成字典？",
        expected=("doc:json.loads", "doc:json", "doc:json.JSONDecoder"),
        note="the Python name in the question carries it, on both sides",
    ),
    DemoQuestion(
        "What is the best way to cook rice?",
        note="off-topic for Python's documentation: nothing clears min_relevance, so the shortlist is empty",
    ),
    DemoQuestion(
        "怎么买咖啡？",
        note="off-topic, in Chinese: an empty shortlist too (cosine alone cannot tell, relevance can)",
    ),
)


# ---------------------------------------------------------------------------------------------------- index
def _fingerprint(docs: Sequence[CorpusDocument], encoder: Encoder) -> str:
    digest = hashlib.sha256()
    # "titled": chunks carry their document's title (Prefilter's title_key); an index made before that is rebuilt.
    digest.update(f"{encoder.model_name}|{CHUNK_TOKENS}|{CHUNK_OVERLAP}|titled|{len(docs)}".encode())
    for doc in docs:
        digest.update(doc.id.encode())
        digest.update(b"\0")
        digest.update(doc.text.encode())
        digest.update(b"\1")
    return digest.hexdigest()[:16]


def _marker(db: Path, collection: str) -> Path:
    return db / f".shortlist-demo-{collection}.json"


def build_index(
    *,
    db: str | Path | None = None,
    collection: str = DEMO_COLLECTION,
    encoder: Encoder | None = None,
    rebuild: bool = False,
    limit: int | None = None,
    documents: Sequence[CorpusDocument] | None = None,
    progress: bool | None = None,
    out: TextIO | None = None,
) -> tuple[Prefilter, dict[str, Any]]:
    """Open the demo index, building it first unless a finished one for the same corpus is there.

    The finished index is recognised by a small marker file beside the collection (``.shortlist-demo-<name>.json``
    in the database folder) holding the corpus's fingerprint and chunk count; anything else (no marker, another
    corpus or ``limit``, an interrupted build, ``rebuild=True``) rebuilds the collection from scratch.

    Args:
        db: Embedded Chroma folder; default :func:`shortlist.config.resolve_chroma_path` (``SHORTLIST_CHROMA_PATH``,
            else ``<SHORTLIST_HOME>/chroma``).
        collection: Collection name (default ``"python-docs"``).
        encoder: Encoder to use; default the shared one.
        rebuild: Build again even if a finished index is there.
        limit: Index only the first ``limit`` documents of the corpus (tests, a quick look).
        documents: Index these documents instead of :func:`~shortlist.corpus.demo_corpus` (e.g. a slice made with
            ``demo_corpus(topics=[...], modules=[...])``); ``limit`` then applies to them.
        progress: Show a progress bar on stderr (default: when stderr is a terminal).
        out: Where to write the summary lines (default stdout).

    Returns:
        The open :class:`~shortlist.prefilter.Prefilter` and a summary dict (``built``, ``documents``, ``chunks``,
        ``tokens``, ``seconds``, ``db``, ``collection``).
    """
    from shortlist.corpus import demo_corpus
    from shortlist.encoder import Encoder
    from shortlist.prefilter import Prefilter
    from shortlist.store import ChunkStore

    out = out or sys.stdout
    path = resolve_chroma_path(db)
    encoder = encoder or Encoder.shared()
    started = time.perf_counter()
    docs = list(demo_corpus() if documents is None else documents)[:limit]
    fingerprint = _fingerprint(docs, encoder)
    marker = _marker(path, collection)
    recorded: dict[str, Any] = {}
    if marker.is_file():
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
    if not rebuild and recorded.get("fingerprint") == fingerprint:
        prefilter = Prefilter(
            collection, path=path, encoder=encoder, chunk_tokens=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP
        )
        if prefilter.count() == recorded.get("chunks"):
            summary = {**recorded, "built": False, "seconds": round(time.perf_counter() - started, 2)}
            summary.update(db=str(path), collection=collection)
            return prefilter, summary
        logger.info("Demo index %r is incomplete (%d chunks): rebuilding", collection, prefilter.count())
    out.write(
        f"Building the demo index: {len(docs):,} document{'s' if len(docs) != 1 else ''} of Python's own "
        f"documentation -> {path} "
        f"(collection {collection!r}). This runs once.\n"
    )
    out.flush()
    marker.unlink(missing_ok=True)
    if path.is_dir():
        ChunkStore.drop_collection(collection, path=path)
    prefilter = Prefilter(
        collection, path=path, encoder=encoder, chunk_tokens=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP
    )
    show = sys.stderr.isatty() if progress is None else progress
    with ingest_progress(len(docs), enabled=show, desc="embedding") as callback:
        report = prefilter.add_documents([d.as_dict() for d in docs], progress=callback)
    seconds = time.perf_counter() - started
    chunks = prefilter.count()
    summary = {
        "fingerprint": fingerprint,
        "documents": len(docs),
        "chunks": chunks,
        "tokens": int(getattr(report, "tokens", 0)),
        "build_seconds": round(seconds, 1),
        "limit": limit,
    }
    atomic_write(marker, json.dumps(summary, indent=2))
    summary.update(built=True, seconds=round(seconds, 2), db=str(path), collection=collection)
    return prefilter, summary


# ---------------------------------------------------------------------------------------------------- questions
def _matches(source: str, expected: Sequence[str]) -> bool:
    """An expected id ending with "." names a module's documents (``doc:io.`` matches ``doc:io.open``)."""
    return any(source.startswith(e) if e.endswith(".") else source == e for e in expected)


def _expected_rank(result: Shortlist, expected: Sequence[str]) -> int | None:
    for hit in result.hits:
        if _matches(str(hit.metadata.get("source", "")), expected):
            return hit.rank
    return None


def _index_line(summary: dict[str, Any], enc: Encoder, load_s: float) -> str:
    """The index's and the model's figures, before the questions."""
    verb = "Built" if summary["built"] else "Reusing"
    return (
        f"{verb} index {summary['collection']!r} at {summary['db']}: {summary['documents']:,} documents, "
        f"{summary['chunks']:,} chunks of <= {CHUNK_TOKENS} tokens"
        + (f", {summary['tokens']:,} tokens" if summary.get("tokens") else "")
        + (f", built in {summary['seconds']:.1f} s" if summary["built"] else f" (opened in {summary['seconds']:.1f} s)")
        + f". Model: {enc.model_name} ({enc.backend_name}, {enc.device}, ready in {load_s:.1f} s).\n"
    )


def _warm_keyword_side(prefilter: Prefilter, chunks: int) -> str:
    """Build the keyword index and the hybrid calibration (and load jieba) now; the line that says so."""
    started = time.perf_counter()
    # The keyword index (built once from the collection) and the hybrid weights (from probes of its own chunks),
    # so that the questions' timings are search only.
    calibration = prefilter.calibration()
    prefilter.search("异常", k=1, mode="keyword")  # and jieba's dictionary loaded
    weights = ", ".join(f"{script} {w:.2f}" for script, w in sorted(calibration.weights.items())) or "prior"
    return (
        f"Keyword index (BM25, jieba for Chinese) over {chunks:,} chunks and hybrid calibration "
        f"(dense weight by script: {weights}) ready in {time.perf_counter() - started:.1f} s.\n"
    )


def _answer(number: int, question: DemoQuestion, result: Shortlist, k: int) -> str:
    """One question's block: the question, its note, the shortlist table and whether a right document is in it."""
    lines = [f"\nQ{number}. {question.text}   [{question.mode}]"]
    if question.note:
        lines.append(f"    ({question.note})")
    lines.append(format_shortlist(result))
    if not question.expected and not result.hits:
        lines.append("    -> an empty shortlist: nothing relevant, no need to call the LLM")
    if question.expected:
        rank = _expected_rank(result, question.expected)
        wanted = " or ".join(e + "*" if e.endswith(".") else e for e in question.expected[:2])
        verdict = f"a right document ({wanted}) at rank {rank}" if rank else f"{wanted} not in the top {k}"
        lines.append(f"    -> {verdict}")
    return "\n".join(lines) + "\n"


def _savings_line(results: Sequence[Shortlist]) -> str:
    """The tokens the shortlists cost on average against sending the whole corpus with every question."""
    corpus_tokens = results[-1].stats.corpus_tokens
    sent = sum(r.stats.kept_tokens for r in results) / len(results)
    return (
        f"\nSending the whole corpus with every question would cost {corpus_tokens:,} tokens each; the "
        f"shortlists cost {sent:,.0f} tokens on average: {1 - sent / corpus_tokens:.2%} of the tokens saved, "
        f"{corpus_tokens / max(sent, 1):,.0f}x fewer.\n"
    )


def run(
    *,
    db: str | Path | None = None,
    collection: str = DEMO_COLLECTION,
    rebuild: bool = False,
    limit: int | None = None,
    documents: Sequence[CorpusDocument] | None = None,
    questions: Sequence[str | DemoQuestion] | None = None,
    k: int = 3,
    min_relevance: float | None = SUGGESTED_MIN_RELEVANCE,
    encoder: Encoder | None = None,
    progress: bool | None = None,
    out: TextIO | None = None,
) -> list[Shortlist]:
    """Build or reuse the demo index, then print each question's shortlist, its figures and the tokens saved.

    Args:
        db: Embedded Chroma folder (default: the default data folder).
        collection: Collection name (default ``"python-docs"``).
        rebuild: Rebuild the index even if it is there.
        limit: Index only the first ``limit`` documents.
        documents: Index these documents instead of the whole demo corpus.
        questions: Questions to ask (strings are searched in the default mode, hybrid); default :data:`QUESTIONS`.
        k: Hits per question (default 3).
        min_relevance: Hits under this relevance are dropped (default
            :data:`~shortlist.search.options.SUGGESTED_MIN_RELEVANCE`, 0.3; ``None`` keeps all): an off-topic
            question gets an empty shortlist.
        encoder: Encoder to use; default the shared one.
        progress: Progress bar while building (default: when stderr is a terminal).
        out: Where to print (default stdout).

    Returns:
        The shortlists, in question order.
    """
    out = out or sys.stdout
    prefilter, summary = build_index(
        db=db,
        collection=collection,
        encoder=encoder,
        rebuild=rebuild,
        limit=limit,
        documents=documents,
        progress=progress,
        out=out,
    )
    enc = prefilter.encoder
    started = time.perf_counter()
    enc.load()  # before the questions, so their timings are search only
    enc.embed_query("warm-up")  # the first forward pass sets up torch's kernels (~0.5 s)
    out.write(_index_line(summary, enc, time.perf_counter() - started))
    asked = [q if isinstance(q, DemoQuestion) else DemoQuestion(q) for q in (questions or QUESTIONS)]
    if any(q.mode != "dense" for q in asked):  # build the keyword side before the timed questions
        out.write(_warm_keyword_side(prefilter, summary["chunks"]))
    results = []
    for number, question in enumerate(asked, 1):
        result = prefilter.search(
            question.text,
            k=k,
            mode=question.mode,  # type: ignore[arg-type]
            min_relevance=min_relevance,
        )
        results.append(result)
        out.write(_answer(number, question, result, k))
    if results and results[-1].stats.corpus_tokens:
        out.write(_savings_line(results))
    out.flush()
    return results
