"""The demo corpus: deterministic, offline, quiet, with the documents the demo's questions need."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shortlist.corpus import (
    DOC_MODULES,
    SKIPPED_MODULES,
    CorpusDocument,
    demo_corpus,
    docstring_documents,
    read_documents,
    topic_documents,
)
from shortlist.errors import InputError


def test_topics_cover_pydoc_topics_with_titles() -> None:
    from pydoc_data.topics import topics

    docs = topic_documents()
    assert [d.id for d in docs] == [f"topic:{name}" for name in sorted(topics)]
    by_id = {d.id: d for d in docs}
    assert by_id["topic:try"].metadata == {"title": 'The "try" statement', "kind": "topic", "topic": "try"}
    assert "except" in by_id["topic:try"].text
    # reST underline rows are gone
    assert "*****" not in by_id["topic:try"].text


def test_topics_subset_and_unknown_topic() -> None:
    docs = topic_documents(["with", "try", "try"])
    assert [d.id for d in docs] == ["topic:try", "topic:with"]
    with pytest.raises(InputError, match="no-such-topic"):
        topic_documents(["no-such-topic"])


def test_docstrings_ids_kinds_and_signatures() -> None:
    docs = docstring_documents(["json", "os.path"])
    by_id = {d.id: d for d in docs}
    assert by_id["doc:json"].metadata["kind"] == "module"
    loads = by_id["doc:json.loads"]
    assert loads.metadata == {"title": "json.loads", "kind": "function", "module": "json"}
    assert loads.text.startswith("json.loads(s, *,")
    assert by_id["doc:json.JSONDecoder"].metadata["kind"] == "class"
    assert "json.JSONDecoder.decode" in by_id["doc:json.JSONDecoder"].text  # methods appended to their class
    # os.path functions live in posixpath/genericpath but are documented under os.path
    assert "doc:os.path.join" in by_id
    assert all(d.text.strip() for d in docs)


def test_each_object_documented_once() -> None:
    docs = docstring_documents(["io", "builtins"])
    ids = [d.id for d in docs]
    assert len(ids) == len(set(ids))
    assert "doc:io.open" in ids and "doc:builtins.open" not in ids  # open() is io.open


def test_skipped_and_missing_modules_are_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(sys.modules)
    docs = docstring_documents(["this", "antigravity", "no_such_module_xyz", "textwrap"])
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert {d.metadata["module"] for d in docs} == {"textwrap"}
    assert "this" not in set(sys.modules) - before
    assert "this" in SKIPPED_MODULES and "this" not in DOC_MODULES


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="wrap it in a list"):
        docstring_documents("json")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="limit"):
        demo_corpus(limit=-1)


def test_demo_corpus_is_deterministic_and_large() -> None:
    first = demo_corpus()
    second = demo_corpus()
    assert first == second
    ids = [d.id for d in first]
    assert len(ids) == len(set(ids))
    assert len(first) > 1000
    assert ids[0].startswith("topic:") and ids[-1].startswith("doc:")
    assert {"topic:try", "doc:io.TextIOWrapper", "doc:io.open", "doc:json.loads"} <= set(ids)


def test_limit_and_as_dict() -> None:
    docs = demo_corpus(limit=5)
    assert len(docs) == 5
    assert docs == demo_corpus()[:5]
    d = docs[0].as_dict()
    assert set(d) == {"id", "text", "metadata"}
    assert isinstance(docs[0], CorpusDocument)
    d["metadata"]["title"] = "changed"
    assert docs[0].metadata["title"] != "changed"


def test_same_corpus_in_another_process() -> None:
    """Nothing process-specific (object addresses, import order, third-party patches of the stdlib) leaks in.

    ``transformers`` patches ``logging.Logger.warning_once``/``info_once`` onto the standard library's class, so a
    process that imported it first (every process that loaded the torch backend) must still build the same corpus.
    """
    import hashlib
    import json
    import subprocess

    digest = (
        "import hashlib, json; from shortlist.corpus import demo_corpus; "
        "print(hashlib.sha256(json.dumps([d.as_dict() for d in demo_corpus()]).encode()).hexdigest())"
    )

    def run(code: str) -> str:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=180)
        return out.stdout.strip()

    bare = run(digest)
    after_transformers = run("import logging, transformers; assert hasattr(logging.Logger, 'warning_once'); " + digest)
    here = hashlib.sha256(json.dumps([d.as_dict() for d in demo_corpus()]).encode()).hexdigest()
    assert bare == after_transformers == here
    assert not any(" at 0x" in d.text for d in demo_corpus())


def test_read_documents_titles(tmp_path: Path) -> None:
    """A title is metadata only when there is one: the pre-filter repeats it at the head of every chunk."""
    folder = tmp_path
    (folder / "notes.md").write_text("# Logs\nRotate them weekly.", encoding="utf-8")
    (folder / "faq.jsonl").write_text(
        '{"_id": "a", "title": "Reset password", "text": "Click Forgot password."}\n'
        '{"_id": "b", "text": "The shop opens at nine."}\n',
        encoding="utf-8",
    )
    docs = {d.id: d for d in read_documents([folder])}
    assert docs["a"].metadata["title"] == "Reset password" and docs["a"].text.startswith("Reset password")
    assert "title" not in docs["b"].metadata  # not its id: "b" would head its chunks as noise
    md = next(d for d in docs.values() if d.id.endswith("notes.md"))
    assert md.metadata["title"] == "notes.md"
