"""Loaders on real files the tests write with real libraries: fpdf2 (PDF), python-docx (DOCX), HTML by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from shortlist.corpus import read_documents
from shortlist.errors import InputError
from shortlist.loaders import FileError, LoadResult, html_text, load_files, read_docx, read_html, read_pdf

fpdf = pytest.importorskip("fpdf", reason="the PDF tests write their PDFs with fpdf2 (dev group)")
docx = pytest.importorskip("docx", reason="the DOCX tests need python-docx (the files extra)")

PAGES = [
    "Tides are the rise and fall of sea levels caused by the Moon.",
    "Spring tides happen twice a month, at new and full moon.",
    "Neap tides are the weakest, at the first and third quarter.",
]


def write_pdf(
    path: Path, pages: list[str], *, title: str | None = None, owner: str | None = None, user: str = ""
) -> Path:
    pdf = fpdf.FPDF()
    if title:
        pdf.set_title(title)
    if owner is not None:
        pdf.set_encryption(owner_password=owner, user_password=user)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        if text:
            pdf.multi_cell(0, 8, text)
        else:  # a page with a drawing and no text, like a scan without OCR
            pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path


def write_docx(path: Path) -> Path:
    document = docx.Document()
    document.core_properties.title = "Tide tables"
    document.add_heading("Tides", level=1)
    document.add_paragraph("The Moon pulls the oceans into two bulges.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Place", "High tide"
    table.cell(1, 0).text, table.cell(1, 1).text = "Brest", "06:12"
    document.add_paragraph("Spring tides come after new and full moon.")
    document.save(str(path))
    return path


ARTICLE = ["The Moon's gravity pulls the oceans.", "Two high tides a day follow from the Earth's rotation."]
HTML = f"""<!doctype html><html><head><title>Tides and the Moon</title><style>p {{ color: red }}</style>
<script>var tracking = "pageview analytics";</script></head><body>
<header><div class="logo">Ocean Notes</div><nav><a href="/">Home</a> <a href="/blog">Blog archive</a></nav></header>
<div id="cookie-banner">We use cookies. Accept all cookies?</div>
<main><article><!-- draft: check the figures --><header><h1>Tides</h1></header><p>{ARTICLE[0]}</p>
<p>Two <b>high</b> tides a day follow from the
Earth's rotation.</p><div class="share-buttons">Share on Facebook</div></article></main>
<aside>Related posts: best beaches</aside><div class="site-footer">Copyright Ocean Notes Ltd.</div>
<footer>Privacy policy</footer></body></html>"""


def test_pdf_gives_one_document_per_page_with_its_number(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "tides.pdf", PAGES, title="All about tides")
    docs = read_pdf(path)
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert all(d.metadata["pages"] == 3 and d.metadata["title"] == "All about tides" for d in docs)
    assert [" ".join(d.text.split()) for d in docs] == PAGES
    assert docs[1].id == f"{path.resolve()}#page=2" and docs[1].metadata["path"] == str(path.resolve())
    untitled = read_pdf(write_pdf(tmp_path / "plain.pdf", PAGES[:1]))
    assert untitled[0].metadata["title"] == "plain.pdf"


def test_pdf_blank_pages_are_left_out_and_a_scan_is_reported(tmp_path: Path) -> None:
    docs = read_pdf(write_pdf(tmp_path / "mixed.pdf", [PAGES[0], "", PAGES[2]]))
    assert [d.metadata["page"] for d in docs] == [1, 3]
    with pytest.raises(FileError, match="no text layer in its 2 pages"):
        read_pdf(write_pdf(tmp_path / "scan.pdf", ["", ""]))


def test_encrypted_pdf(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="encrypted: it needs a password"):
        read_pdf(write_pdf(tmp_path / "locked.pdf", PAGES, owner="owner", user="secret"))
    # owner password only (printing/copying restricted, opens without a password): readable
    docs = read_pdf(write_pdf(tmp_path / "restricted.pdf", PAGES, owner="owner"))
    assert len(docs) == 3 and "Spring tides" in docs[1].text


def test_corrupt_files_are_reported_with_the_reason(tmp_path: Path) -> None:
    good = write_pdf(tmp_path / "good.pdf", PAGES).read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.pdf").write_bytes(b"%PDF-1.7\nthis is not a PDF body at all\n")
    (bad / "truncated.pdf").write_bytes(good[: len(good) // 3])
    (bad / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip archive")
    (bad / "empty.html").write_text("<html><body><nav>Home</nav><script>x()</script></body></html>")
    (bad / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (bad / "ok.txt").write_text("This one is fine.")
    (bad / "rows.jsonl").write_text('{"text": "a good line"}\n{not json\n')
    result = load_files([bad])
    reasons = {Path(p).name: why for p, why in result.failed}
    assert set(reasons) == {"garbage.pdf", "truncated.pdf", "broken.docx", "empty.html", "latin1.txt", "rows.jsonl"}
    assert f"{bad / 'rows.jsonl'}, line 2: not valid JSON" in "\n".join(result.failures())  # its good line is out too
    assert "not a readable PDF" in reasons["garbage.pdf"] and "not a readable PDF" in reasons["truncated.pdf"]
    assert "not a readable .docx" in reasons["broken.docx"]
    assert "no text in the page" in reasons["empty.html"]
    assert reasons["latin1.txt"].startswith("not UTF-8 text")
    assert [d.text for d in result.documents] == ["This one is fine."] and result.files == 1
    assert "6 files not readable: broken.docx: not a readable .docx file" in result.summary()
    assert result.problems(shown=2) == ["6 files not readable: broken.docx, empty.html (and 4 more)"]


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    [doc] = read_docx(write_docx(tmp_path / "tides.docx"))
    assert doc.text.split("\n\n") == [
        "Tides",
        "The Moon pulls the oceans into two bulges.",
        "Place | High tide",
        "Brest | 06:12",
        "Spring tides come after new and full moon.",
    ]
    assert doc.metadata == {"title": "Tide tables", "path": str((tmp_path / "tides.docx").resolve())}


def test_html_main_text_and_title_without_boilerplate(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(HTML)
    [doc] = read_html(tmp_path / "page.html")
    assert doc.metadata["title"] == "Tides and the Moon"
    assert doc.text.split("\n\n") == ["Tides", *ARTICLE]  # the article's own <header> (its h1) stays
    for noise in ("draft", "Home", "cookies", "Share", "Related", "Copyright", "Privacy", "pageview", "color"):
        assert noise not in doc.text
    # no <main>/<article>: the body, still without navigation and footer; no <title>: the first <h1>
    title, text = html_text("<body><div class='menu'>Home Shop</div><h1>Notes</h1><p>Body text.</p></body>")
    assert (title, text) == ("Notes", "Notes\n\nBody text.")


def test_folders_list_unsupported_files_and_keep_text_ids(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Notes\nSome markdown.")
    (tmp_path / "sub").mkdir()
    write_pdf(tmp_path / "sub" / "b.pdf", PAGES[:2])
    (tmp_path / "sub" / "c.html").write_text(HTML)
    write_docx(tmp_path / "sub" / "d.docx")
    for name in ("logo.png", "data.csv", "slides.pptx", "z1.bin", "z2.bin", "z3.bin"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".hidden.pdf").write_bytes(b"x")
    (tmp_path / "empty.txt").write_text("   ")
    result = load_files(tmp_path)
    assert isinstance(result, LoadResult) and result.failed == ()
    assert result.files == 4 and len(result) == 1 + 2 + 1 + 1
    assert [Path(p).name for p in result.unsupported] == [
        "data.csv",
        "logo.png",
        "slides.pptx",
        "z1.bin",
        "z2.bin",
        "z3.bin",
    ]
    assert [Path(p).name for p in result.empty] == ["empty.txt"]
    assert result.summary() == (
        "4 files read into 5 documents; 6 unsupported files skipped: data.csv, logo.png, slides.pptx, z1.bin, "
        "z2.bin (and 1 more); 1 empty file"
    )
    assert result.as_dict()["unsupported"][0].endswith("data.csv")
    # text files: the same documents (ids too) as the reader the CLI used before
    assert result.documents[0] == next(read_documents([tmp_path / "a.md"]))
    again = load_files([tmp_path])
    assert [d.id for d in again] == [d.id for d in result]


def test_bad_paths_raise(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(b"x")
    with pytest.raises(InputError, match="Cannot index .*logo.png: supported files are .*\\.pdf"):
        load_files([tmp_path / "logo.png"])
    with pytest.raises(InputError, match="does not exist"):
        load_files([tmp_path / "missing.pdf"])
