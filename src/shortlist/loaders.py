"""Read the files RAG users index most: PDF, HTML, DOCX, plus text, Markdown, reST and JSON Lines.

:func:`load_files` reads files and folders into documents for :meth:`Prefilter.add_documents
<shortlist.prefilter.Prefilter.add_documents>` and says what it could not read:

- **PDF** (``.pdf``, pypdf): one document per page with text, id ``<path>#page=<n>``, metadata ``page`` (1-based),
  ``pages``, ``path`` and ``title`` (the PDF's own title, else the file name), so every chunk can be cited by page.
  A PDF without a text layer (a scan: run OCR first), an encrypted one that needs a password, or a corrupt one is
  reported with the reason.
- **HTML** (``.html``, ``.htm``, ``.xhtml``, BeautifulSoup): the main text (``<main>``/``<article>`` when the page
  has one) with paragraphs kept, boilerplate dropped (scripts, styles, navigation, header and footer outside the
  article, sidebars, cookie banners, share and comment blocks), ``title`` from ``<title>`` (else the first ``<h1>``).
- **DOCX** (``.docx``, python-docx): paragraphs and tables in document order, ``title`` from the document's
  properties (else the file name).
- **Text** (``.txt``, ``.md``, ``.markdown``, ``.rst``) and **JSON Lines** (``.jsonl``): as
  :func:`shortlist.corpus.read_documents` reads them (the same ids, so an index built before stays valid).

Every document has an id that depends only on the file's path (and page): indexing the same files again changes
nothing. In a folder, hidden files are skipped and files of other types are listed in
:attr:`LoadResult.unsupported` rather than skipped silently. The PDF, HTML and DOCX readers need the ``files`` extra
(``pip install 'shortlist[files]'``); none of them fetches anything at run time.

Example:
    ```python
    import tempfile
    from pathlib import Path

    from shortlist.loaders import load_files

    folder = Path(tempfile.mkdtemp())
    (folder / "page.html").write_text(
        "<html><head><title>Tides</title></head><body><nav>Home | Blog</nav>"
        "<main><p>The Moon pulls the oceans.</p></main><footer>Copyright</footer></body></html>"
    )
    (folder / "notes.txt").write_text("Spring tides come twice a month.")
    (folder / "logo.png").write_bytes(b"PNG")
    result = load_files([folder])
    print([(d.metadata["title"], d.text) for d in result.documents])
    # [('notes.txt', 'Spring tides come twice a month.'), ('Tides', 'The Moon pulls the oceans.')]
    print(result.summary())
    # 2 files read into 2 documents; 1 unsupported file skipped: logo.png
    ```
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortlist.corpus import SUPPORTED_SUFFIXES as TEXT_SUFFIXES
from shortlist.corpus import CorpusDocument, read_documents, walk_files
from shortlist.errors import InputError, MissingDependencyError

__all__ = [
    "FILE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "FileError",
    "LoadResult",
    "load_files",
    "read_docx",
    "read_html",
    "read_pdf",
]

logger = logging.getLogger(__name__)

#: Suffixes read by the optional readers (the ``files`` extra).
FILE_SUFFIXES: tuple[str, ...] = (".pdf", ".html", ".htm", ".xhtml", ".docx")
#: Every suffix :func:`load_files` reads.
SUPPORTED_SUFFIXES: tuple[str, ...] = (*TEXT_SUFFIXES, *FILE_SUFFIXES)
#: How many unsupported file names :meth:`LoadResult.summary` shows.
SHOWN_NAMES = 5
_EXTRA = "pip install 'shortlist[files]'"


class FileError(InputError):
    """A file that cannot be read (corrupt, encrypted, no text layer); the message says which and why."""


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_files` read.

    Attributes:
        documents: The documents, in a stable order (folders sorted; PDF pages in order).
        files: Files read into at least one document.
        failed: ``(path, reason)`` of each file that could not be read.
        unsupported: Files in the folders given whose type no reader handles (not read).
        empty: Files read that hold no text (an empty text file; a PDF whose pages are all blank is in ``failed``).
    """

    documents: tuple[CorpusDocument, ...] = ()
    files: int = 0
    failed: tuple[tuple[str, str], ...] = ()
    unsupported: tuple[str, ...] = ()
    empty: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[CorpusDocument]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    def summary(self, shown: int = SHOWN_NAMES) -> str:
        """One line: files read, documents, and the files failed (with the reason) or skipped (first ``shown``)."""
        parts = [f"{_plural(self.files, 'file')} read into {_plural(len(self.documents), 'document')}"]
        parts += self.problems(shown, reasons=True)
        if self.empty:
            parts.append(f"{_plural(len(self.empty), 'empty file')}")
        return "; ".join(parts)

    def problems(self, shown: int = SHOWN_NAMES, *, reasons: bool = False) -> list[str]:
        """What went unread: the files that could not be read, then the unsupported ones (the first ``shown`` names).

        Args:
            shown: How many names to give in each part.
            reasons: Give each unreadable file's reason after its name.

        Returns:
            Zero, one or two parts, e.g. ``["1 file not readable: scan.pdf", "2 unsupported files skipped: a.png,
            b.csv"]``.
        """
        parts = []
        if self.failed:
            if reasons:
                names = "; ".join(_failure(Path(p).name, why) for p, why in self.failed[:shown])
            else:
                names = ", ".join(Path(p).name for p, _ in self.failed[:shown])
            more = f" (and {len(self.failed) - shown} more)" if len(self.failed) > shown else ""
            parts.append(f"{_plural(len(self.failed), 'file')} not readable: {names}{more}")
        if self.unsupported:
            names = ", ".join(Path(p).name for p in self.unsupported[:shown])
            more = f" (and {len(self.unsupported) - shown} more)" if len(self.unsupported) > shown else ""
            parts.append(f"{_plural(len(self.unsupported), 'unsupported file')} skipped: {names}{more}")
        return parts

    def failures(self) -> list[str]:
        """One line per file that could not be read: its path and the reason (a JSON line's number after a comma)."""
        return [_failure(p, why) for p, why in self.failed]

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data (for ``--json``): files read, documents, the failed, unsupported, empty files."""
        return {
            "read": self.files,
            "documents": len(self.documents),
            "failed": [{"path": p, "reason": why} for p, why in self.failed],
            "unsupported": list(self.unsupported),
            "empty": list(self.empty),
        }


def _failure(name: str, why: str) -> str:
    return f"{name}, {why}" if why.startswith("line ") else f"{name}: {why}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------------------------------- PDF
def read_pdf(path: str | os.PathLike[str]) -> list[CorpusDocument]:
    """One document per PDF page that has text (see the module docstring for ids and metadata).

    Raises:
        FileError: if the file is not a readable PDF, needs a password, or has no text layer.
        MissingDependencyError: without pypdf (the ``files`` extra).
    """
    try:
        import pypdf
        from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError
    except ImportError as exc:
        msg = f"Reading PDF files needs pypdf: {_EXTRA}."
        raise MissingDependencyError(msg) from exc
    file = Path(path).resolve()
    try:
        reader = pypdf.PdfReader(file)
        if reader.is_encrypted and not reader.decrypt(""):
            msg = "encrypted: it needs a password (save an unprotected copy to index it)"
            raise FileError(msg)
        texts = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        own_title = info.title if info is not None else None
    except FileError:
        raise
    except (FileNotDecryptedError, DependencyError) as exc:
        msg = f"encrypted and cannot be decrypted here ({exc})"
        raise FileError(msg) from exc
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        msg = f"not a readable PDF ({type(exc).__name__}: {exc})"
        raise FileError(msg) from exc
    if not texts:
        msg = "a PDF without pages"
        raise FileError(msg)
    if not any(t.strip() for t in texts):
        msg = f"no text layer in its {_plural(len(texts), 'page')} (a scan? run OCR on it first)"
        raise FileError(msg)
    title = own_title.strip() if isinstance(own_title, str) and own_title.strip() else file.name
    docs = []
    for number, text in enumerate(texts, start=1):
        if text.strip():
            meta = {"title": title, "path": str(file), "page": number, "pages": len(texts)}
            docs.append(CorpusDocument(f"{file}#page={number}", text.strip(), meta))
    return docs


# ---------------------------------------------------------------------------------------------- HTML
#: Tags that never hold the page's text.
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "svg", "canvas", "form", "button", "select")
#: Tags that are boilerplate outside the article (a ``<header>`` inside ``<article>`` holds its title).
_FRAME_TAGS = ("nav", "header", "footer", "aside")
_FRAME_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alert"}
_BOILERPLATE = re.compile(
    r"(?:^|[-_\s])(?:nav|navbar|navigation|menu|sidebar|footer|breadcrumbs?|comments?|share|sharing|social|"
    r"cookies?|consent|banner|related|advert\w*|ads?|promo\w*|newsletter|subscribe|popup|modal|skip-link)(?:$|[-_\s])",
    re.IGNORECASE,
)
_BLOCKS = (
    "p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "tr", "blockquote", "pre", "figure", "figcaption", "br", "hr",
)  # fmt: skip


def read_html(path: str | os.PathLike[str]) -> list[CorpusDocument]:
    """The page's main text as one document (id = the file's path; metadata ``title`` and ``path``).

    Raises:
        FileError: if the file cannot be decoded or holds no text once boilerplate is dropped.
        MissingDependencyError: without beautifulsoup4 (the ``files`` extra).
    """
    file = Path(path).resolve()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        msg = f"cannot be read ({exc.strerror or exc})"
        raise FileError(msg) from exc
    title, text = html_text(raw)
    if not text:
        msg = "no text in the page once scripts, navigation and other boilerplate are dropped"
        raise FileError(msg)
    return [CorpusDocument(str(file), text, {"title": title or file.name, "path": str(file)})]


def html_text(html: str | bytes) -> tuple[str, str]:
    """``(title, main text)`` of an HTML page: boilerplate dropped, one paragraph per block element.

    Raises:
        MissingDependencyError: without beautifulsoup4 (the ``files`` extra).
    """
    try:
        from bs4 import BeautifulSoup, Tag
        from bs4.element import NavigableString
    except ImportError as exc:
        msg = f"Reading HTML files needs beautifulsoup4: {_EXTRA}."
        raise MissingDependencyError(msg) from exc
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag is not None else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.find("body") or soup
    if not title:
        h1 = root.find("h1")
        title = " ".join(h1.get_text(" ").split()) if h1 is not None else ""
    for tag in list(root.find_all(True)):
        if not isinstance(tag, Tag) or tag.decomposed:
            continue
        inside_article = tag.find_parent(["article", "main"]) is not None
        if tag.name in _FRAME_TAGS and not (inside_article and tag.name == "header"):
            tag.decompose()
            continue
        role = str(tag.get("role") or "").lower()
        names = " ".join([*(tag.get("class") or []), str(tag.get("id") or "")])
        if (role in _FRAME_ROLES or _BOILERPLATE.search(names)) and tag.find(["main", "article", "h1"]) is None:
            tag.decompose()
    for piece in list(root.find_all(string=True)):  # a line break in the source is a space, except in <pre>
        if type(piece) is NavigableString and piece.find_parent("pre") is None and re.search(r"\s", piece):
            piece.replace_with(re.sub(r"\s+", " ", str(piece)))
    for tag in root.find_all(_BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    lines = [" ".join(line.split()) for line in root.get_text().splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return title, text


# ---------------------------------------------------------------------------------------------- DOCX
def read_docx(path: str | os.PathLike[str]) -> list[CorpusDocument]:
    """The document's paragraphs and tables (cells joined by `` | ``), in order, as one document.

    Raises:
        FileError: if the file is not a readable .docx or holds no text.
        MissingDependencyError: without python-docx (the ``files`` extra).
    """
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError as exc:
        msg = f"Reading DOCX files needs python-docx: {_EXTRA}."
        raise MissingDependencyError(msg) from exc
    import zipfile

    file = Path(path).resolve()
    try:
        document = docx.Document(str(file))
        parts: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                if block.text.strip():
                    parts.append(block.text.strip())
            elif isinstance(block, Table):
                for row in block.rows:
                    cells = list(dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip()))
                    if cells:
                        parts.append(" | ".join(cells))
        own_title = document.core_properties.title
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        msg = f"not a readable .docx file ({type(exc).__name__}: {exc})"
        raise FileError(msg) from exc
    text = "\n\n".join(parts)
    if not text:
        msg = "no text in the document"
        raise FileError(msg)
    title = own_title.strip() if own_title and own_title.strip() else file.name
    return [CorpusDocument(str(file), text, {"title": title, "path": str(file)})]


_READERS: dict[str, Callable[[Path], list[CorpusDocument]]] = {
    ".pdf": read_pdf,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".docx": read_docx,
}


# ---------------------------------------------------------------------------------------------- folders
def _walk(folder: Path, files: list[Path], unsupported: list[Path]) -> None:
    """Files under ``folder`` (:func:`~shortlist.corpus.walk_files`): those a reader handles, and the rest."""
    for path, supported in walk_files(folder, SUPPORTED_SUFFIXES):
        (files if supported else unsupported).append(path)


def load_files(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    text_field: str = "text",
    title_field: str = "title",
) -> LoadResult:
    """Read files and folders into documents; report the files that could not be read or are not supported.

    Args:
        paths: Files and folders (folders are read recursively, sorted, hidden files skipped).
        text_field: The JSON Lines field holding the text (default ``"text"``).
        title_field: The JSON Lines field holding a title (default ``"title"``).

    Returns:
        A :class:`LoadResult`: the documents (pass ``result.documents`` to :meth:`Prefilter.add_documents`), and the
        failed, unsupported and empty files.

    Raises:
        InputError: if a path does not exist, or a file named directly has a type no reader handles.
        MissingDependencyError: if a PDF, HTML or DOCX file is found without the ``files`` extra installed.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files: list[Path] = []
    unsupported: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            _walk(path, files, unsupported)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                msg = f"Cannot index {path}: supported files are {', '.join(SUPPORTED_SUFFIXES)} (or a folder)."
                raise InputError(msg)
            files.append(path)
        else:
            msg = f"{path} does not exist."
            raise InputError(msg)
    docs: list[CorpusDocument] = []
    failed: list[tuple[str, str]] = []
    empty: list[str] = []
    read = 0
    for file in dict.fromkeys(files):
        reader = _READERS.get(file.suffix.lower())
        try:
            got = reader(file) if reader is not None else _read_text(file, text_field, title_field)
        except FileError as exc:
            failed.append((str(file), str(exc)))
            logger.info("Cannot read %s: %s", file, exc)
            continue
        except InputError as exc:  # a text file that is not UTF-8, a bad JSON line: the message names the file
            failed.append((str(file), _reason(str(exc), file)))
            logger.info("Cannot read %s: %s", file, exc)
            continue
        if got:
            read += 1
            docs.extend(got)
        else:
            empty.append(str(file))
    return LoadResult(tuple(docs), read, tuple(failed), tuple(str(p) for p in unsupported), tuple(empty))


def _reason(message: str, file: Path) -> str:
    """An error message about ``file`` without its path: "x.txt is not UTF-8 ..." -> "not UTF-8 ..."."""
    reason = message.replace(str(file), "").lstrip(" ,:")
    return reason.removeprefix("is ") or message


def _read_text(file: Path, text_field: str, title_field: str) -> list[CorpusDocument]:
    return list(read_documents([file], text_field=text_field, title_field=title_field))
