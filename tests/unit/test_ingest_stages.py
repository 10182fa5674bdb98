"""The ingest path's stages over plain data: coerce documents, chunk with titles, diff against what is stored.

The tokenizer is the packaged model's tokenizer file (no weights are loaded, no Chroma)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from shortlist.errors import ConfigError, InputError
from shortlist.ingest.chunking import check_chunking, chunk_document, title_of, titled, without_leading_title
from shortlist.ingest.coerce import SourceDocument, coerce_document, coerce_documents
from shortlist.ingest.diff import dedupe, plan_writes, stale_ids
from shortlist.store import ChunkRecord, restore_metadata
from shortlist.text import default_tokenizer, split_text


@dataclass
class _LangChainLike:
    page_content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass
class _LlamaNodeLike:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id_: str = ""


# ---------------------------------------------------------------------------------------------- coerce
def test_coerce_shapes() -> None:
    assert coerce_document("  Cats\u3000sleep. ", 0).text == "Cats sleep."
    doc = coerce_document({"_id": "d1", "page_content": "Hi there", "metadata": {"lang": "en"}}, 0)
    assert (doc.source, doc.text, dict(doc.metadata)) == ("d1", "Hi there", {"lang": "en"})
    lc = coerce_document(_LangChainLike("LangChain text", {"source": "file.txt"}), 0)
    assert (lc.source, lc.text) == ("file.txt", "LangChain text")  # metadata["source"] when no id
    node = coerce_document(_LlamaNodeLike("Node text", {"k": 1}, id_="n-7"), 0)
    assert (node.source, node.text, dict(node.metadata)) == ("n-7", "Node text", {"k": 1})


def test_coerce_ids_and_metadatas_of_the_call() -> None:
    doc = coerce_document({"id": "own", "text": "x y", "metadata": {"a": 1, "b": 2}}, 1, ["i0", "i1"], [None, {"b": 3}])
    assert doc.source == "i1" and dict(doc.metadata) == {"a": 1, "b": 3}
    hashed = coerce_document("Some  text", 0)
    assert hashed.source == "doc-" + hashlib.sha256(b"Some text").hexdigest()[:20]
    assert coerce_document({"id": 7, "text": "t"}, 0).source == "7"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (3.5, "documents[0] is a float: give a str"),
        ({"text": None, "id": "a"}, "documents[0] has no text (got NoneType)"),
        ({"text": "ok", "metadata": ["x"]}, "documents[0].metadata must be a dict, got list."),
        ({"text": "ok", "id": ""}, "The id of documents[0] must be a non-empty str, got ''."),
        ({"text": "ok", "id": True}, "The id of documents[0] must be a non-empty str, got True."),
        ({"text": " \u200b "}, "documents[0] is empty after cleaning"),
        ({"text": "ok", "metadata": {"bad": object()}}, "documents[0].metadata"),
    ],
)
def test_coerce_refuses_bad_documents(doc: Any, message: str) -> None:
    with pytest.raises(InputError) as info:
        coerce_document(doc, 0)
    assert message in str(info.value)


def test_coerce_documents_list_iterator_and_duplicates() -> None:
    docs = list(coerce_documents([{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, {"id": "a", "text": "3"}]))
    assert [(d.source, d.text) for d in docs] == [("b", "two"), ("a", "3")]  # the last version of a, in its place
    assert [d.text for d in coerce_documents("just one")] == ["just one"]
    lazy = coerce_documents(iter(["x", 5]))
    assert next(lazy).text == "x"  # an iterator is read one document at a time
    with pytest.raises(InputError, match=r"documents\[1\]"):
        next(lazy)
    with pytest.raises(InputError, match=r"documents\[1\]"):
        coerce_documents(["fine", ""])  # a list is checked whole, before anything is returned
    with pytest.raises(ConfigError, match="ids has 1 entries for 2 documents"):
        coerce_documents(["a", "b"], ids=["x"])
    with pytest.raises(ConfigError, match="need a list of documents"):
        coerce_documents(iter(["a"]), ids=["x"])


# ---------------------------------------------------------------------------------------------- chunk + titles
def test_title_policy() -> None:
    tok = default_tokenizer()
    assert title_of({"title": "  The   JSON  module "}, "title", tok, 128)[0] == "The JSON module"
    assert title_of({"title": 42}, "title", tok, 128) == ("", 0)
    assert title_of({"name": "x"}, "title", tok, 128) == ("", 0)
    assert title_of({"title": "x"}, None, tok, 128) == ("", 0)
    long_title = " ".join(["word"] * 43)  # 43 word pieces > 128 // 3
    assert title_of({"title": long_title}, "title", tok, 128) == ("", 0)
    assert title_of({"title": " ".join(["word"] * 42)}, "title", tok, 128)[1] == 42
    assert titled("T", "body") == "T\nbody"


def test_without_leading_title_whole_words_only() -> None:
    assert without_leading_title("json.loads(s) parses", "json.loads") == "(s) parses"
    assert without_leading_title("JSONDecoder is a class", "JSON") == "JSONDecoder is a class"
    assert without_leading_title("  The\n JSON   module reads", "The JSON module") == "reads"
    assert without_leading_title("Other text", "Title") == "Other text"


def test_chunk_document_heads_every_chunk_with_the_title_within_the_budget() -> None:
    tok = default_tokenizer()
    body = " ".join(f"Sentence number {i} talks about cats and their long naps." for i in range(40))
    doc = SourceDocument("doc", "Cats\n" + body, {"title": "Cats"})
    chunks = chunk_document(doc, tokenizer=tok, chunk_tokens=64, chunk_overlap=16, title_key="title")
    title_tokens = len(tok.encode("Cats", add_special_tokens=False).ids)
    expected = split_text(body, 64 - title_tokens, 16, tokenizer=tok)  # the leading title is taken off the body
    assert [c.text for c in chunks] == [f"Cats\n{p}" for p in expected]
    assert [c.chunk for c in chunks] == list(range(len(expected)))
    for c in chunks:
        assert c.tokens == len(tok.encode(c.text, add_special_tokens=False).ids) <= 64
        assert c.source == "doc" and c.metadata["title"] == "Cats"
    untitled = chunk_document(doc, tokenizer=tok, chunk_tokens=64, chunk_overlap=16, title_key=None)
    assert [c.text for c in untitled] == split_text("Cats\n" + body, 64, 16, tokenizer=tok)


def test_a_document_that_is_only_its_title_is_one_chunk() -> None:
    tok = default_tokenizer()
    doc = SourceDocument("d", "Cats", {"title": "Cats"})
    chunks = chunk_document(doc, tokenizer=tok, chunk_tokens=64, chunk_overlap=8, title_key="title")
    assert [c.text for c in chunks] == ["Cats"]


# ---------------------------------------------------------------------------------------------- diff
def _rec(source: str, i: int, text: str, **meta: Any) -> ChunkRecord:
    return ChunkRecord(source=source, chunk=i, text=text, tokens=3, metadata=meta)


def test_plan_writes_new_changed_unchanged() -> None:
    a0, a1, b0 = _rec("a", 0, "one", lang="en"), _rec("a", 1, "two", lang="en"), _rec("b", 0, "three")
    records = dedupe([[a0, a1], [b0, b0]])
    assert list(records) == [a0.id, a1.id, b0.id]
    stored = {
        a0.id: restore_metadata(a0.chroma_metadata()),  # as stored: unchanged
        a1.id: restore_metadata(_rec("a", 1, "two", lang="fr").chroma_metadata()),  # other metadata
    }
    plan = plan_writes(records, stored)
    assert [r.id for r in plan.new] == [b0.id]
    assert [r.id for r in plan.changed] == [a1.id]
    assert plan.unchanged == 1


def test_stale_ids() -> None:
    assert stale_ids({"x", "y", "z"}, {"y"}) == ["x", "z"]
    assert stale_ids({"y"}, {"y", "w"}) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((7, 0, None), "chunk_tokens must be an int >= 8, got 7."),
        ((True, 0, None), "chunk_tokens must be an int >= 8, got True."),
        ((300, 16, None), "chunk_tokens=300 is over the model's window (254 word pieces)"),
        ((64, 64, None), "chunk_overlap must be an int in [0, chunk_tokens), got 64."),
        ((64, -1, None), "chunk_overlap must be an int in [0, chunk_tokens), got -1."),
        ((64, 8, ""), "title_key must be a metadata key (a non-empty str) or None, got ''."),
        ((64, 8, 3), "title_key must be a metadata key (a non-empty str) or None, got 3."),
    ],
)
def test_check_chunking(args: tuple[Any, Any, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_chunking(*args, max_tokens=254)
    assert message in str(info.value)
    check_chunking(254, 0, "title", max_tokens=254)
    check_chunking(8, 7, None, max_tokens=254)
