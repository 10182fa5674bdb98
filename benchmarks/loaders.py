"""The file readers: extraction quality and speed of the libraries shortlist.loaders uses against the alternatives.

    python benchmarks/loaders.py

PDF: a six-page PDF and a two-column page written by fpdf2 (dev group) from SciFact abstracts (../shared/data; a
built-in text when it is missing), read by ``shortlist.loaders.read_pdf`` (pypdf) and by pdfminer.six. HTML: an
article page with the usual boilerplate (navigation, header, cookie banner, sidebar, footer, scripts), once with
semantic tags (``<main>``, ``<article>``, ``<nav>``) and once as bare ``<div>`` soup, read by
``shortlist.loaders.html_text`` (BeautifulSoup) and by trafilatura. The alternatives are measured only when installed
(``pip install pdfminer.six trafilatura``; shortlist does not depend on them).

Quality is word-level against the text that was written: recall (share of the true words found, in order) and
precision (share of the extracted words that are true: boilerplate that leaks lowers it). Times are the mean of a few
runs on this machine (noisy when it is shared).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shortlist.loaders import html_text, read_pdf

T = TypeVar("T")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir_scifact" / "corpus.jsonl"
FALLBACK = (
    "Tides are the rise and fall of sea levels caused by the combined effects of the gravitational forces exerted "
    "by the Moon and the Sun and the rotation of the Earth. Most places in the ocean usually experience two high "
    "tides and two low tides each day. "
) * 4


def paragraphs(n: int) -> list[str]:
    """``n`` paragraphs of real prose (Latin-1 only: fpdf2's core fonts)."""
    if DATA.is_file():
        with DATA.open(encoding="utf-8") as handle:
            texts = [json.loads(line)["text"] for line, _ in zip(handle, range(n), strict=False)]
    else:
        texts = [FALLBACK] * n
    return [t.encode("latin-1", "ignore").decode("latin-1")[:900] for t in texts]


def score(truth: str, got: str) -> tuple[float, float]:
    """Word recall and precision of ``got`` against ``truth`` (longest matching blocks, in order)."""
    t, g = re.findall(r"\w+", truth.lower()), re.findall(r"\w+", got.lower())
    matched = sum(b.size for b in difflib.SequenceMatcher(None, t, g, autojunk=False).get_matching_blocks())
    return matched / max(len(t), 1), matched / max(len(g), 1)


def timed(fn: Callable[[], T], runs: int = 5) -> tuple[T, float]:
    """``fn()`` and its mean time in milliseconds over ``runs`` calls."""
    start = time.perf_counter()
    out = fn()
    for _ in range(runs - 1):
        out = fn()
    return out, (time.perf_counter() - start) / runs * 1000


def row(label: str, truth: list[str], got: list[str], ms: float) -> str:
    scores = [score(a, b) for a, b in zip(truth, got, strict=False)]
    recall = sum(r for r, _ in scores) / len(truth)
    precision = sum(p for _, p in scores) / max(len(scores), 1)
    return f"| {label:<54} | {recall:6.3f} | {precision:9.3f} | {ms:8.1f} |"


def main() -> None:
    try:
        from fpdf import FPDF
    except ImportError:
        sys.exit("benchmarks/loaders.py writes its PDFs with fpdf2: pip install 'fpdf2>=2.7,<3'")
    paras = paragraphs(20)
    folder = Path(tempfile.mkdtemp(prefix="shortlist-loaders-"))
    lines = ["| reader | recall | precision | ms/page |", "|---|---|---|---|"]

    # ---- PDF: six pages of a heading and three paragraphs
    pdf, pages = FPDF(), []
    for p in range(6):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.cell(0, 10, f"Section {p + 1}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        for text in paras[p * 3 : (p + 1) * 3]:
            pdf.multi_cell(0, 6, text)
            pdf.ln(3)
        pages.append(f"Section {p + 1}\n" + "\n".join(paras[p * 3 : (p + 1) * 3]))
    pdf.output(str(folder / "six.pdf"))
    columns = FPDF()
    columns.add_page()
    columns.set_font("Helvetica", size=10)
    columns.set_xy(10, 20)
    columns.multi_cell(90, 5, paras[18])
    columns.set_xy(110, 20)
    columns.multi_cell(90, 5, paras[19])
    columns.output(str(folder / "columns.pdf"))
    two = [paras[18] + "\n" + paras[19]]

    docs, ms = timed(lambda: read_pdf(folder / "six.pdf"))
    lines.append(row("PDF, 6 pages: pypdf (shortlist.loaders)", pages, [d.text for d in docs], ms / 6))
    got, ms = timed(lambda: read_pdf(folder / "columns.pdf"))
    lines.append(row("PDF, two columns: pypdf (shortlist.loaders)", two, [got[0].text], ms))
    if importlib.util.find_spec("pdfminer") is not None:
        from pdfminer.high_level import extract_pages, extract_text
        from pdfminer.layout import LTTextContainer

        def pdfminer_pages(path: Path) -> list[str]:
            return [
                "".join(e.get_text() for e in page if isinstance(e, LTTextContainer)) for page in extract_pages(path)
            ]

        texts, ms = timed(lambda: pdfminer_pages(folder / "six.pdf"))
        lines.append(row("PDF, 6 pages: pdfminer.six", pages, texts, ms / 6))
        text, ms = timed(lambda: extract_text(folder / "columns.pdf"))
        lines.append(row("PDF, two columns: pdfminer.six", two, [str(text)], ms))
    else:
        lines.append("| PDF: pdfminer.six not installed | | | |")

    # ---- HTML: the same article in a semantic page and in div soup
    article = paras[:6]
    truth = ["Tides and the Moon\n" + "\n".join(article)]
    body = "".join(f"<p>{t}</p>" for t in article)
    semantic = f"""<!doctype html><html><head><title>Tides and the Moon - Ocean Notes</title>
<style>body {{ font-family: sans-serif }}</style><script>window.track = function() {{ return 'pageview' }};</script>
</head><body><header><div class="logo">Ocean Notes</div><nav><a href="/">Home</a> <a href="/blog">Blog archive</a>
<a href="/about">About us</a></nav></header><div id="cookie-banner">We use cookies. Accept all cookies?</div>
<main><article><h1>Tides and the Moon</h1>{body}</article></main>
<aside><h3>Related posts</h3><a href="/a">Ten best beaches for summer holidays</a></aside>
<footer>Copyright 2026 Ocean Notes Ltd. All rights reserved. Privacy policy.</footer></body></html>"""
    soup = f"""<html><head><title>Tides</title></head><body>
<div class="top-menu"><a href="/">Home</a> | <a href="/shop">Shop our ocean gear</a> | <a href="/login">Log in</a></div>
<div class="wrapper"><div class="sidebar">Popular: <a href="/x">Best surfboards of the year reviewed</a></div>
<div class="content"><h1>Tides and the Moon</h1>{body}<div class="share">Share this on Facebook Twitter Email</div>
</div><div class="comments"><h4>3 comments</h4><p>Great post! Visit my site for cheap watches.</p></div></div>
<div class="site-footer">Copyright 2026 Ocean Notes Ltd. All rights reserved. Privacy policy.</div></body></html>"""
    readers: list[tuple[str, Callable[[str], str]]] = [("BeautifulSoup (shortlist.loaders)", lambda h: html_text(h)[1])]
    if importlib.util.find_spec("trafilatura") is not None:
        import trafilatura

        readers.append(("trafilatura", lambda h: trafilatura.extract(h) or ""))
    else:
        lines.append("| HTML: trafilatura not installed | | | |")
    for page_name, page in (("semantic tags", semantic), ("div soup", soup)):
        for name, reader in readers:
            text, ms = timed(functools.partial(reader, page), runs=20)
            lines.append(row(f"HTML, {page_name}: {name}", truth, [str(text)], ms))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
