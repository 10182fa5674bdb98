"""What the commands print: JSON, the shortlist table, and the index, eval and info summaries.

The JSON of a shortlist is :meth:`Shortlist.to_dict() <shortlist.types.Shortlist.to_dict>` and its table is
:func:`shortlist.console.format_shortlist` (the demo prints the same); the rest is the commands' own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shortlist.console import format_shortlist, stats_line

if TYPE_CHECKING:
    from shortlist.types import Shortlist

__all__ = [
    "echo_json",
    "eval_dict",
    "eval_table",
    "eval_text",
    "format_shortlist",
    "info_lines",
    "report_dict",
    "report_line",
    "shortlist_dict",
    "shortlist_report_dict",
    "shortlist_table",
    "stats_line",
]


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (non-ASCII text kept as it is)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def shortlist_dict(result: Shortlist) -> dict[str, Any]:
    """A :class:`~shortlist.types.Shortlist` as plain JSON-ready data (the shape of ``shortlist query --json``).

    Kept for callers of the old name: it is :meth:`Shortlist.to_dict() <shortlist.types.Shortlist.to_dict>`.
    """
    return result.to_dict()


# ---------------------------------------------------------------------------------------------------- index
def report_dict(report: Any) -> dict[str, Any]:
    """The IngestReport's public figures as a dict."""
    if hasattr(report, "as_dict"):
        return dict(report.as_dict())
    if is_dataclass(report) and not isinstance(report, type):
        return asdict(report)
    return {k: v for k, v in vars(report).items() if not k.startswith("_")}


def report_line(s: Mapping[str, Any]) -> str:
    """The one-line summary of ``shortlist index`` from its JSON summary."""
    docs = s.get("documents", 0)
    chunks = s.get("chunks", 0)
    added = s.get("added", s.get("new_chunks"))
    tokens = s.get("tokens", 0)
    parts = [f"Indexed {docs:,} documents: {chunks:,} chunks, {tokens:,} tokens in {s['seconds']:.1f} s"]
    if added is not None:
        parts.append(f"{added:,} new, {max(chunks - added, 0):,} already there")
    parts.append(f"collection {s['collection']!r} now holds {s['total_chunks']:,} chunks ({s['db']})")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------------- eval
def eval_dict(report: Any) -> dict[str, Any]:
    """A retrieval report (:func:`shortlist.evaluate.evaluate`) as JSON-ready data."""
    return {
        "queries": report.queries,
        "ndcg@10": round(report.ndcg10, 4),
        "top1": round(report.top1, 4),
        "recall": {str(k): round(v, 4) for k, v in sorted(report.recall.items())},
        "mrr": {str(k): round(v, 4) for k, v in sorted(report.mrr.items())},
        "latency_ms": {k: round(v, 2) for k, v in report.latency_ms.items()},
    }


def shortlist_report_dict(report: Any) -> dict[str, Any]:
    """A shortlist report (:func:`shortlist.evaluate.prefilter_report`) as JSON-ready data."""
    return {
        "queries": report.queries,
        "gold_in_shortlist": {str(k): round(v, 4) for k, v in sorted(report.gold_in_shortlist.items())},
        "tokens_sent": {str(k): round(v, 6) for k, v in sorted(report.tokens_sent.items())},
        "latency_ms": {k: round(v, 2) for k, v in report.latency_ms.items()},
    }


def eval_table(reports: Sequence[Any]) -> str:
    """The retrieval figures of each mode, one row per mode, and the number of queries."""
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


def shortlist_table(report: Any) -> str:
    """One mode's shortlist report: gold document kept and tokens sent per shortlist size, then its latency."""
    lines = [
        f"\nShortlist of k chunks ({report.name}): is the gold document in it, and what share of the corpus is sent",
        f"{'k':>5}  {'gold in shortlist':>17}  {'tokens sent':>11}  {'tokens saved':>12}",
    ]
    for k in sorted(report.gold_in_shortlist):
        sent = report.tokens_sent[k]
        lines.append(f"{k:>5}  {report.gold_in_shortlist[k]:>17.3f}  {sent:>11.3%}  {1 - sent:>12.3%}")
    lat = report.latency_ms
    lines.append(f"search latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    return "\n".join(lines)


def eval_text(
    header: Mapping[str, Any], reports: Sequence[Any], shortlists: Sequence[Any], *, index_seconds: float
) -> str:
    """``shortlist eval``'s text: the dataset and its index, the retrieval table, each mode's shortlist table."""
    verb = "indexed" if header["embedded"] else "reused the index"
    lines = [
        f"{header['dataset']}: {header['documents']:,} documents, {header['queries']:,} queries -> "
        f"{header['chunks']:,} chunks of <= {header['chunk_tokens']} tokens, {header['corpus_tokens']:,} corpus "
        f"tokens ({verb}: {header['embedded']:,} chunks embedded in {index_seconds:.1f} s; collection "
        f"{header['collection']!r} in {header['db']})",
        f"\nRetrieval of documents ({header['model']}):",
        eval_table(reports),
    ]
    lines.extend(shortlist_table(rep) for rep in shortlists)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- info
def info_lines(data: Mapping[str, Any], sizes: Mapping[str, int] | None, path: str | Path) -> list[str]:
    """``shortlist info`` as aligned ``key  value`` lines, the collections last with their chunk counts."""
    width = max(len(k) for k in data)
    lines = [f"{key:<{width}}  {value}" for key, value in data.items() if key != "collections"]
    if sizes is None:
        lines.append(f"{'collections':<{width}}  none yet (no database at {path})")
    elif not sizes:
        lines.append(f"{'collections':<{width}}  none")
    else:
        lines.append(f"{'collections':<{width}}  {len(sizes)}")
        lines.extend(f"  {name:<{width}}  {count:,} chunks" for name, count in sizes.items())
    return lines
