"""The demo corpus: Python's own documentation, built offline from what every Python installation carries.

Two kinds of documents, in a fixed order:

1. **Topics** — every entry of :mod:`pydoc_data.topics` (the text ``help("try")`` prints: the language reference's
   sections on statements, expressions, data model, built-in types...). One document per topic, id
   ``topic:<name>``, metadata ``title`` (the section heading), ``kind="topic"``, ``topic``.
2. **Docstrings** — the public modules, classes and functions of a curated list of standard-library modules
   (:data:`DOC_MODULES`): one document per module (``doc:<module>``), per class (``doc:<module>.<Class>``, its
   public methods' docstrings appended) and per function (``doc:<module>.<function>``); metadata ``title`` (the
   qualified name), ``kind`` (``"module"``, ``"class"`` or ``"function"``) and ``module``.

Modules are imported with warnings silenced and stdout/stderr captured; modules with side effects on import
(``antigravity``, ``this``, GUI toolkits, ``idlelib``, ``turtle``...) are never in the list, and a module that fails
to import (a platform that lacks it) is skipped. The result is deterministic for a given Python build: the same
ids, texts and order on every call.

Example:
    ```python
    from shortlist.corpus import demo_corpus

    docs = demo_corpus(topics=["try"], modules=["json"])
    print(docs[0].id, docs[0].metadata["title"])
    # topic:try The "try" statement
    ```
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from shortlist.errors import InputError

__all__ = [
    "DOC_MODULES",
    "SKIPPED_MODULES",
    "SUPPORTED_SUFFIXES",
    "CorpusDocument",
    "demo_corpus",
    "docstring_documents",
    "read_documents",
    "topic_documents",
    "walk_files",
]

logger = logging.getLogger(__name__)

#: The standard-library modules whose docstrings join the demo corpus: the ones people reach for most, picked so
#: that a full ingest stays within a few minutes on 2 CPU cores (see :func:`demo_corpus`).
DOC_MODULES: tuple[str, ...] = (
    "abc",
    "argparse",
    "base64",
    "bisect",
    "builtins",
    "collections",
    "collections.abc",
    "concurrent.futures",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "enum",
    "fnmatch",
    "fractions",
    "functools",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "html",
    "http.client",
    "importlib",
    "io",
    "itertools",
    "json",
    "logging",
    "math",
    "os",
    "os.path",
    "pathlib",
    "pickle",
    "pprint",
    "queue",
    "random",
    "re",
    "secrets",
    "shlex",
    "shutil",
    "sqlite3",
    "string",
    "subprocess",
    "sys",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "traceback",
    "typing",
    "unittest",
    "urllib.parse",
    "urllib.request",
    "warnings",
    "xml.etree.ElementTree",
    "zipfile",
    "zoneinfo",
)

#: Modules never imported by :func:`docstring_documents`, whatever the caller asks: they act on import (open a
#: browser, print a poem, start a GUI) or pull in a GUI toolkit or the test suite.
SKIPPED_MODULES: frozenset[str] = frozenset(
    {
        "__main__",
        "antigravity",
        "this",
        "idlelib",
        "tkinter",
        "turtle",
        "turtledemo",
        "test",
        "readline",
        "rlcompleter",
        "ensurepip",
        "pydoc_data",
    }
)

# Module objects re-exported elsewhere: os.path's functions live in posixpath (or ntpath) and genericpath.
_OWNER_ALIASES: dict[str, frozenset[str]] = {
    "os.path": frozenset({"posixpath", "ntpath", "genericpath"}),
    "os": frozenset({"posix", "nt"}),
}
_UNDERLINE = re.compile(r"^\s*([*=\-^~\"'`#+])\1{2,}\s*$")
_TABLE_RULE = re.compile(r"^\s*[+|][-=+| ]*[+|]\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")


@dataclass(frozen=True)
class CorpusDocument:
    """One document of the demo corpus.

    Attributes:
        id: ``topic:<name>`` or ``doc:<qualified name>``; unique within the corpus.
        text: The document's text (a topic's help text, or a signature followed by a docstring).
        metadata: ``title``, ``kind`` and either ``topic`` or ``module`` (all strings) for the demo corpus; for files,
            ``title`` and ``path`` (and a PDF's ``page``/``pages``, a JSON line's scalar fields).
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The document as ``{"id", "text", "metadata"}``, the form :meth:`Prefilter.add_documents` takes."""
        return {"id": self.id, "text": self.text, "metadata": dict(self.metadata)}


# ---------------------------------------------------------------------------------------------------- topics
def _clean_topic(text: str) -> tuple[str, str]:
    """Drop reST underlines and table rules, turn table rows into plain text; return (title, text)."""
    lines = []
    for line in text.splitlines():
        if _UNDERLINE.match(line) or _TABLE_RULE.match(line):
            continue
        row = _TABLE_ROW.match(line)
        if row:
            line = "   " + " ".join(cell.strip() for cell in row.group(1).split("|") if cell.strip())
        lines.append(line.rstrip())
    body = "\n".join(lines).strip()
    title = next((line.strip() for line in lines if line.strip()), "")
    return title, body


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _dedupe_topics(bodies: dict[str, str]) -> dict[str, str]:
    """Keep each long paragraph only in the shortest topic that has it.

    A few topics gather others (``compound`` holds ``try``, ``with``, ``for``...; ``specialnames`` holds
    ``customization``, ``attribute-access``...): their shared paragraphs stay in the specific topic, so a search
    does not return the same text twice, and what only the gathering topic says (the ``match`` statement) stays.
    """
    size = {name: len(body) for name, body in bodies.items()}
    owner: dict[str, str] = {}
    for name in sorted(bodies, key=lambda n: (size[n], n)):
        for para in _paragraphs(bodies[name]):
            key = " ".join(para.split())
            if len(key) >= 80:
                owner.setdefault(key, name)
    out = {}
    for name, body in bodies.items():
        kept = [p for p in _paragraphs(body) if owner.get(" ".join(p.split()), name) == name]
        out[name] = "\n\n".join(kept).strip()
    return out


def topic_documents(topics: Iterable[str] | None = None) -> list[CorpusDocument]:
    """One document per :mod:`pydoc_data.topics` entry, sorted by topic name.

    Args:
        topics: Only these topic names (e.g. ``["try", "exceptions"]``); ``None`` (default) for all of them.

    Returns:
        The documents, ids ``topic:<name>``.

    Raises:
        InputError: if a named topic does not exist (the message lists a few that do).
    """
    from pydoc_data.topics import topics as all_topics

    names = sorted(all_topics)
    if topics is not None:
        wanted = list(dict.fromkeys(topics))
        unknown = [t for t in wanted if t not in all_topics]
        if unknown:
            msg = f"Unknown pydoc topic(s) {unknown}: choose among {len(names)} such as {names[:6]}."
            raise InputError(msg)
        names = sorted(wanted)
    cleaned = {name: _clean_topic(text) for name, text in all_topics.items()}
    bodies = _dedupe_topics({name: body for name, (_, body) in cleaned.items()})
    docs = []
    for name in names:
        title, body = cleaned[name][0], bodies[name]
        if body:
            docs.append(CorpusDocument(f"topic:{name}", body, {"title": title, "kind": "topic", "topic": name}))
    return docs


# ---------------------------------------------------------------------------------------------------- docstrings
def _import_quietly(name: str) -> ModuleType | None:
    if name in SKIPPED_MODULES or name.split(".")[0] in SKIPPED_MODULES:
        return None
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except (Exception, SystemExit) as exc:  # a module this platform lacks, or one that fails on import
        logger.debug("Skipping module %s: %s", name, exc)
        return None


def _doc(obj: object) -> str:
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str):
        return ""
    return inspect.cleandoc(doc).strip()


class _Elided:
    """Stands for a default value whose repr depends on the process (an object address, a mutable list)."""

    def __repr__(self) -> str:
        return "..."


_ELIDED = _Elided()


def _stable_default(value: object) -> object:
    if value is inspect.Parameter.empty:
        return value
    if isinstance(value, list | dict | set) or "<" in repr(value):
        return _ELIDED
    return value


def _signature(obj: object) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sig = inspect.signature(obj)  # type: ignore[arg-type]
            params = [p.replace(default=_stable_default(p.default)) for p in sig.parameters.values()]
            return str(sig.replace(parameters=params))
    except (TypeError, ValueError, RuntimeError):
        return ""


def _public_names(module: ModuleType) -> list[str]:
    exported = getattr(module, "__all__", None)
    if isinstance(exported, list | tuple) and all(isinstance(n, str) for n in exported):
        names = [n for n in exported if hasattr(module, n)]
    else:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted(set(names))


def _belongs(obj: object, module_name: str, listed: frozenset[str]) -> bool:
    """Whether ``obj`` should be documented under ``module_name``."""
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return False
    if owner == module_name or owner in _OWNER_ALIASES.get(module_name, ()):
        return True
    if owner in listed:
        return False  # documented under its own module
    # Defined in a private helper (``_io``, ``_collections``) or an unlisted submodule (``asyncio.tasks``).
    return any(part.startswith("_") for part in owner.split(".")) or owner.startswith(module_name + ".")


def _from_stdlib(obj: object) -> bool:
    """Whether ``obj`` was defined by the standard library (or has no module to tell), not patched in by a package."""
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return True
    return owner.split(".")[0] in sys.stdlib_module_names or owner == "builtins"


def _class_text(qualname: str, cls: type) -> str:
    parts = [f"class {qualname}{_signature(cls)}", _doc(cls)]
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_"):
            continue
        target = member.__func__ if isinstance(member, classmethod | staticmethod) else member
        if not _from_stdlib(target):
            continue  # patched in by a third-party import (transformers adds ``Logger.warning_once``)
        doc = _doc(target)
        if not doc or not (callable(target) or isinstance(target, property)):
            continue
        sig = _signature(target) if callable(target) else ""
        parts.append(f"{qualname}.{name}{sig}: {doc}")
    return "\n\n".join(p for p in parts if p)


def _module_documents(name: str, module: ModuleType, listed: frozenset[str], seen: set[int]) -> list[CorpusDocument]:
    docs: list[CorpusDocument] = []
    module_doc = _doc(module)
    if module_doc:
        docs.append(
            CorpusDocument(
                f"doc:{name}", f"Module {name}\n\n{module_doc}", {"title": name, "kind": "module", "module": name}
            )
        )
    for attr in _public_names(module):
        obj = getattr(module, attr, None)
        if attr.endswith("hook"):
            # sys.excepthook & co. may be replaced at run time (pytest, IPython): document the original.
            obj = getattr(module, f"__{attr}__", obj)
        if id(obj) in seen or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if not _belongs(obj, name, listed):
            continue
        qualname = f"{name}.{attr}"
        if inspect.isclass(obj):
            if not _doc(obj):
                continue
            kind, text = "class", _class_text(qualname, obj)
        else:
            doc = _doc(obj)
            if not doc:
                continue
            kind, text = "function", f"{qualname}{_signature(obj)}\n\n{doc}"
        seen.add(id(obj))
        docs.append(CorpusDocument(f"doc:{qualname}", text, {"title": qualname, "kind": kind, "module": name}))
    return docs


def docstring_documents(modules: Sequence[str] | None = None) -> list[CorpusDocument]:
    """Documents from the docstrings of standard-library modules, their public classes and functions.

    Each object is documented once, under the first listed module that defines or re-exports it (``open`` under
    ``builtins``, ``io.TextIOWrapper`` under ``io``).

    Args:
        modules: Module names (``"json"``, ``"os.path"``); default :data:`DOC_MODULES`. Names in
            :data:`SKIPPED_MODULES` and modules that fail to import are skipped.

    Returns:
        The documents in module order, then by name; ids ``doc:<qualified name>``.

    Raises:
        InputError: if ``modules`` is a bare string rather than a list of names.
    """
    if isinstance(modules, str):
        msg = f"modules must be a list of module names, got the string {modules!r}: wrap it in a list."
        raise InputError(msg)
    names = list(dict.fromkeys(DOC_MODULES if modules is None else modules))
    listed = frozenset(names)
    seen: set[int] = set()
    docs: list[CorpusDocument] = []
    for name in names:
        module = _import_quietly(name)
        if module is None:
            continue
        docs.extend(_module_documents(name, module, listed, seen))
    return docs


def demo_corpus(
    *,
    topics: Iterable[str] | None = None,
    modules: Sequence[str] | None = None,
    include_topics: bool = True,
    include_docstrings: bool = True,
    limit: int | None = None,
) -> list[CorpusDocument]:
    """The whole demo corpus: pydoc topics first, then standard-library docstrings.

    With the defaults (all 79 topics of Python 3.11 and the :data:`DOC_MODULES` docstrings) this is about 2,000
    documents and 6,000 chunks of 128 tokens.

    Args:
        topics: Only these pydoc topics (default: all).
        modules: Only these modules' docstrings (default: :data:`DOC_MODULES`).
        include_topics: Include the pydoc topics (default ``True``).
        include_docstrings: Include the docstrings (default ``True``).
        limit: Keep only the first ``limit`` documents (a small, fast slice for tests and notebooks).

    Returns:
        The documents, in a deterministic order, with unique ids.

    Raises:
        InputError: if ``limit`` is negative or a topic name is unknown.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        msg = f"limit must be a non-negative int or None, got {limit!r}."
        raise InputError(msg)
    docs: list[CorpusDocument] = []
    if include_topics:
        docs.extend(topic_documents(topics))
    if include_docstrings and (limit is None or len(docs) < limit):
        docs.extend(docstring_documents(modules))
    return docs if limit is None else docs[:limit]


# ---------------------------------------------------------------------------------------------------- user files
#: File types :func:`read_documents` reads: plain text and Markdown (one document per file) and JSON Lines (one
#: document per line, e.g. a BEIR ``corpus.jsonl``).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".rst", ".jsonl")
_ID_FIELDS = ("_id", "id", "doc_id")


def _is_beir_folder(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file()


def walk_files(folder: Path, suffixes: Collection[str]) -> Iterator[tuple[Path, bool]]:
    """Files under ``folder``, sorted, hidden ones skipped, each with whether its suffix is one of ``suffixes``.

    A BEIR folder (``corpus.jsonl`` beside ``queries.jsonl``) gives its ``corpus.jsonl`` only.
    """
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        if _is_beir_folder(here):
            yield here / "corpus.jsonl", True
            dirs[:] = [d for d in dirs if d != "qrels"]
            continue
        for name in sorted(files):
            if not name.startswith("."):
                yield here / name, Path(name).suffix.lower() in suffixes


def _files_under(folder: Path) -> Iterator[Path]:
    """Supported files under ``folder`` (see :func:`walk_files`)."""
    return (path for path, supported in walk_files(folder, SUPPORTED_SUFFIXES) if supported)


def _scalar_metadata(obj: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    nested = obj.get("metadata")
    items = list(obj.items()) + (list(nested.items()) if isinstance(nested, dict) else [])
    for key, value in items:
        if key in skip or key == "metadata" or not isinstance(key, str):
            continue
        if isinstance(value, str | int | float | bool) and value != "":
            meta[key] = value
    return meta


def _read_jsonl(path: Path, text_field: str, title_field: str) -> Iterator[CorpusDocument]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{path}, line {lineno}: not valid JSON ({exc.msg})."
                raise InputError(msg) from exc
            if not isinstance(obj, dict):
                msg = f"{path}, line {lineno}: expected a JSON object, got {type(obj).__name__}."
                raise InputError(msg)
            text = obj.get(text_field)
            if not isinstance(text, str):
                fields = ", ".join(sorted(map(str, obj))[:8])
                msg = (
                    f"{path}, line {lineno}: no string field {text_field!r} (fields: {fields}); "
                    "name the text field with --text-field."
                )
                raise InputError(msg)
            title = obj.get(title_field)
            title = title.strip() if isinstance(title, str) else ""
            body = f"{title}\n\n{text}" if title and title not in text else text
            if not body.strip():
                continue
            doc_id = next((str(obj[f]) for f in _ID_FIELDS if obj.get(f) not in (None, "")), None)
            doc_id = doc_id or f"{path.name}:{lineno}"
            meta = _scalar_metadata(obj, {text_field, *_ID_FIELDS})
            if title:  # only a real title: the pre-filter repeats it at the head of every chunk
                meta.setdefault("title", title)
            meta["path"] = str(path)
            yield CorpusDocument(doc_id, body, meta)


def read_documents(
    paths: Iterable[str | os.PathLike[str]],
    *,
    text_field: str = "text",
    title_field: str = "title",
) -> Iterator[CorpusDocument]:
    """Read documents from files and folders, lazily and in a stable order.

    - ``.txt``, ``.md``, ``.markdown``, ``.rst``: one document per file; id = the file's absolute path, metadata
      ``title`` (the file name) and ``path``. Empty files are skipped.
    - ``.jsonl``: one document per line, a JSON object with a string ``text_field``; a ``title_field`` is put
      before the text (the BEIR convention) and kept as metadata ``title`` (absent when the line has none); id
      from ``_id``, ``id`` or ``doc_id`` (else ``<file>:<line>``); the other scalar fields become metadata.
    - A folder: its supported files, recursively, sorted, hidden files skipped. A BEIR dataset folder
      (``corpus.jsonl`` beside ``queries.jsonl``) contributes its ``corpus.jsonl`` only.

    The same files give the same ids, so indexing them again changes nothing.

    Args:
        paths: Files and folders.
        text_field: The JSON Lines field holding the text (default ``"text"``).
        title_field: The JSON Lines field holding a title (default ``"title"``).

    Yields:
        :class:`CorpusDocument` objects.

    Raises:
        InputError: if a path does not exist, a file type is not supported, a file is not UTF-8, or a JSON line is
            malformed or lacks the text field; the message names the file and line.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files = list(_files_under(path))
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                msg = f"Cannot index {path}: supported files are {', '.join(SUPPORTED_SUFFIXES)} (or a folder)."
                raise InputError(msg)
            files = [path]
        else:
            msg = f"{path} does not exist."
            raise InputError(msg)
        for file in files:
            try:
                if file.suffix.lower() == ".jsonl":
                    yield from _read_jsonl(file, text_field, title_field)
                    continue
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                msg = f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start})."
                raise InputError(msg) from exc
            except OSError as exc:
                msg = f"Cannot read {file}: {exc.strerror or exc}."
                raise InputError(msg) from exc
            if text.strip():
                absolute = file.resolve()
                yield CorpusDocument(str(absolute), text, {"title": file.name, "path": str(absolute)})
