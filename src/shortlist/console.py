"""Plain text for a terminal: a shortlist as a table with its figures, and a progress bar over an ingest.

What every front that prints (the ``shortlist`` command, the demo) shows the same way, so it lives with the core
rather than in one of them. Nothing here is imported by the rest of the core.

Example:
    ```python
    from shortlist.console import format_shortlist
    from shortlist.types import Hit, SearchStats, Shortlist

    hit = Hit("c1", "Cats purr when they are content.", 0.71, {"source": "cats.md"})
    print(format_shortlist(Shortlist("why do cats purr?", (hit,), SearchStats(1, 1, 9, 9)), width=60))
    #    #  cosine  source   snippet
    #    1   0.710  cats.md  Cats purr when they are content.
    # searched 1 chunks (1 candidates) · kept 1 chunks, 9 of 9 tokens · 0.00% saved
    ```
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shortlist.types import Shortlist

__all__ = ["format_shortlist", "ingest_progress", "stats_line"]


def _snippet(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 1)] + "…"


def format_shortlist(result: Shortlist, *, width: int | None = None) -> str:
    """The shortlist as a text table (rank, cosine, source, snippet) followed by its figures line.

    Args:
        result: The shortlist to show.
        width: Line width in characters (default: the terminal's, else 120).

    Returns:
        The table's lines joined by newlines (no trailing newline).
    """
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


@contextlib.contextmanager
def ingest_progress(total: int, *, enabled: bool, desc: str = "indexing") -> Iterator[Callable[[Any], None] | None]:
    """A tqdm bar on stderr over ``total`` documents, as a ``progress`` callback for ``Prefilter.add_documents``.

    Args:
        total: Documents to ingest.
        enabled: Show the bar; ``False`` yields ``None`` (no callback).
        desc: The bar's label.

    Yields:
        The callback (it reads the running report's ``documents``, ``chunks`` and ``added``), or ``None``.
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
