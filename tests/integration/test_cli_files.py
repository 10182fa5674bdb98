"""`shortlist index` on PDF, HTML and DOCX files (written by real libraries), with unreadable and unsupported ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shortlist import Encoder, Prefilter
from shortlist.cli import cli

fpdf = pytest.importorskip("fpdf", reason="the PDF is written with fpdf2 (dev group)")
docx = pytest.importorskip("docx", reason="the DOCX is written with python-docx (the files extra)")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    pdf = fpdf.FPDF()
    for text in ("Tides rise and fall twice a day.", "Spring tides follow the new and the full moon."):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    pdf.output(str(root / "tides.pdf"))
    document = docx.Document()
    document.add_paragraph("The harbour master publishes the tide tables every week.")
    document.save(str(root / "harbour.docx"))
    (root / "moon.html").write_text(
        "<html><head><title>The Moon</title></head><body><nav>Home | Shop</nav>"
        "<main><p>The Moon's gravity pulls the oceans into two bulges.</p></main></body></html>"
    )
    (root / "scan.pdf").write_bytes(b"%PDF-1.7 not a real PDF")
    (root / "logo.png").write_bytes(b"\x89PNG")
    (root / "slides.pptx").write_bytes(b"PK")
    return root


def test_index_reads_pdf_html_docx_and_lists_what_it_skipped(folder: Path, tmp_path: Path, encoder: Encoder) -> None:
    db = tmp_path / "db"
    result = CliRunner().invoke(cli, ["index", str(folder), "--db", str(db), "--collection", "files"])
    assert result.exit_code == 0, result.output
    assert "Indexed 4 documents" in result.output  # two PDF pages, the HTML page, the DOCX
    assert "1 file not readable: scan.pdf; 2 unsupported files skipped: logo.png, slides.pptx." in result.output
    assert f"Warning: cannot read {folder / 'scan.pdf'}: not a readable PDF" in result.output

    again = CliRunner().invoke(cli, ["index", str(folder), "--db", str(db), "--collection", "files", "--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert summary["added"] == 0 and summary["documents"] == 4  # the same ids: nothing embedded again
    files = summary["files"]
    assert files["read"] == 3 and files["documents"] == 4
    assert [Path(f["path"]).name for f in files["failed"]] == ["scan.pdf"]
    assert "not a readable PDF" in files["failed"][0]["reason"]
    assert [Path(p).name for p in files["unsupported"]] == ["logo.png", "slides.pptx"]

    hit = Prefilter("files", path=db, encoder=encoder).search("When are spring tides?", k=1, mode="dense")[0]
    assert hit.metadata["page"] == 2 and hit.metadata["pages"] == 2 and hit.metadata["title"] == "tides.pdf"


def test_index_of_only_unreadable_files_is_an_error(folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["index", str(folder / "scan.pdf"), "--db", str(tmp_path / "db")])
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == [
        f"Error: {folder / 'scan.pdf'}: not a readable PDF (PdfStreamError: Stream has ended unexpectedly)"
    ]
    only_images = tmp_path / "images"
    only_images.mkdir()
    (only_images / "a.png").write_bytes(b"x")
    result = CliRunner().invoke(cli, ["index", str(only_images), "--db", str(tmp_path / "db")])
    assert result.exit_code == 1 and "Nothing to index" in result.output and "Not supported: a.png" in result.output


def test_loaded_pages_in_the_langchain_store_filter_by_page(folder: Path, encoder: Encoder) -> None:
    from shortlist.langchain import MiniLMEmbeddings, ShortlistVectorStore
    from shortlist.loaders import load_files

    pages = list(load_files(folder / "tides.pdf").documents)
    store = ShortlistVectorStore.from_texts(
        [d.text for d in pages],
        MiniLMEmbeddings(encoder=encoder),
        [d.metadata for d in pages],
        ids=[d.id for d in pages],
        in_memory=True,
    )
    [doc] = store.similarity_search("tides", k=3, filter={"page": 2})
    assert str(doc.id).endswith("tides.pdf#page=2") and "Spring tides" in doc.page_content
    assert doc.metadata["page"] == 2 and doc.metadata["path"] == str((folder / "tides.pdf").resolve())
