"""Adaptive hybrid search on small real corpora (XQuAD passages in Chinese and English), one side empty, and the
calibration's persistence and staleness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shortlist import Encoder, Prefilter
from shortlist.fusion import Calibration, convex

N_PASSAGES = 30
N_QUESTIONS = 40


def _xquad(shared_data: Path, lang: str) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    root = shared_data / "xquad" / lang
    passages = [json.loads(line) for line in (root / "passages.jsonl").read_text(encoding="utf-8").splitlines()]
    passages = passages[:N_PASSAGES]
    keep = {p["_id"] for p in passages}
    questions = [json.loads(line) for line in (root / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    asked = [(q["text"], q["passage_id"]) for q in questions if q["passage_id"] in keep][::5][:N_QUESTIONS]
    return [{"id": p["_id"], "text": p["text"]} for p in passages], asked


def _recall(pf: Prefilter, asked: list[tuple[str, str]], mode: str, k: int = 5) -> float:
    found = 0
    for question, gold in asked:
        hits = pf.search(question, k=k, mode=mode).hits  # type: ignore[arg-type]
        found += any(h.metadata["source"] == gold for h in hits)
    return found / len(asked)


def _indexed(shared_data: Path, encoder: Encoder, lang: str) -> tuple[Prefilter, list[tuple[str, str]]]:
    docs, asked = _xquad(shared_data, lang)
    pf = Prefilter.in_memory(f"hybrid-{lang}", encoder=encoder, chunk_tokens=126)
    pf.add_documents(docs)
    return pf, asked


@pytest.fixture(scope="module")
def zh(shared_data: Path, encoder: Encoder) -> tuple[Prefilter, list[tuple[str, str]]]:
    return _indexed(shared_data, encoder, "zh")


@pytest.fixture(scope="module")
def en(shared_data: Path, encoder: Encoder) -> tuple[Prefilter, list[tuple[str, str]]]:
    return _indexed(shared_data, encoder, "en")


def test_chinese_corpus_calibrates_towards_keyword(zh: tuple[Prefilter, list[tuple[str, str]]]) -> None:
    pf, asked = zh
    cal = pf.calibration()
    assert cal.probes["cjk"] >= 30 and "latin" not in cal.weights
    assert cal.mrr["cjk"]["keyword"] > cal.mrr["cjk"]["dense"]
    assert cal.weights["cjk"] < 0.5
    dense, keyword, hybrid = (_recall(pf, asked, m) for m in ("dense", "keyword", "hybrid"))
    assert hybrid >= max(dense, keyword) - 0.05
    assert hybrid > dense + 0.2  # the English-vocabulary model reads little Chinese


def test_english_corpus_keeps_both_sides(en: tuple[Prefilter, list[tuple[str, str]]]) -> None:
    pf, asked = en
    cal = pf.calibration()
    assert 0.3 <= cal.weights["latin"] <= 0.9
    dense, keyword, hybrid = (_recall(pf, asked, m) for m in ("dense", "keyword", "hybrid"))
    assert hybrid >= max(dense, keyword) - 0.05
    assert hybrid >= 0.85


def test_keyword_side_empty_gives_the_dense_order(en: tuple[Prefilter, list[tuple[str, str]]]) -> None:
    pf, _ = en
    question = "xyzzyplugh quux"  # no term the BM25 index knows
    assert pf.keyword_index().search(question, 10) == []
    hybrid = pf.search(question, k=5, mode="hybrid")
    dense = pf.search(question, k=5, mode="dense", fetch_k=20)
    assert [h.id for h in hybrid.hits] == [h.id for h in dense.hits]
    assert len(hybrid.hits) == 5


def test_dense_side_empty_gives_the_keyword_order(en: tuple[Prefilter, list[tuple[str, str]]]) -> None:
    pf, asked = en
    question = asked[0][0]
    keyword = pf.keyword_index().search(question, 20)
    assert [i for i, _ in pf.fusion(question, [], keyword)] == [i for i, _ in keyword]
    assert [i for i, _ in convex(question, [], keyword, weight=0.9)] == [i for i, _ in keyword]


def test_calibration_is_saved_reloaded_and_redone_when_the_collection_changed_materially(
    tmp_path: Path, shared_data: Path, encoder: Encoder
) -> None:
    docs, _ = _xquad(shared_data, "en")
    pf = Prefilter("persisted", path=tmp_path, encoder=encoder, chunk_tokens=126)
    pf.add_documents(docs[:20])  # the ingest computes the calibration (it had none)
    folder = pf._keywords.folder
    assert folder is not None and folder.parent == tmp_path / "shortlist-keyword"
    first = pf.calibration()
    assert Calibration.load(folder) == first and first.probes
    pf.add_documents(docs[20:21])  # one passage more: far below 10% of the chunks, the weights stay
    assert pf.calibration() == first
    pf.close()
    again = Prefilter("persisted", path=tmp_path, encoder=encoder, chunk_tokens=126)
    assert again.calibration() == first  # reloaded from the folder, not recomputed (same seconds recorded)
    again.add_documents(docs[21:30])  # nine more passages: over 10% of the chunks since the calibration
    redone = again.calibration()
    assert redone != first and Calibration.load(folder) == redone
    again.close()


def test_hybrid_is_the_default_everywhere(
    zh: tuple[Prefilter, list[tuple[str, str]]], shared_data: Path, tmp_path: Path
) -> None:
    """Prefilter.search, both retrievers and ``shortlist query`` search in hybrid mode unless told otherwise."""
    from click.testing import CliRunner
    from langchain_core.documents import Document

    from shortlist.cli import cli
    from shortlist.langchain import ShortlistRetriever as LangChainRetriever
    from shortlist.llama_index import ShortlistRetriever as LlamaIndexRetriever

    pf, asked = zh
    # Questions whose dense and hybrid shortlists differ, so that "the same as hybrid" means something.
    differ = [q for q, _ in asked if [h.id for h in pf.search(q, k=3, mode="dense").hits] !=
              [h.id for h in pf.search(q, k=3, mode="hybrid").hits]][:3]  # fmt: skip
    assert differ
    for question in differ:
        hybrid = [h.id for h in pf.search(question, k=3, mode="hybrid").hits]
        assert [h.id for h in pf.search(question, k=3).hits] == hybrid
        lc: list[Document] = LangChainRetriever(prefilter=pf, k=3).invoke(question)
        assert [d.id for d in lc] == hybrid
        li = LlamaIndexRetriever(pf, similarity_top_k=3).retrieve(question)
        assert [n.node.node_id for n in li] == hybrid
    # The CLI, on an embedded folder holding the same documents (same chunks, same ids).
    db = tmp_path / "db"
    docs, _ = _xquad(shared_data, "zh")
    Prefilter("zh-cli", path=db, encoder=pf.encoder, chunk_tokens=126).add_documents(docs)
    for question in differ:
        out = CliRunner().invoke(cli, ["query", question, "-c", "zh-cli", "--db", str(db), "-k", "3", "--json"])
        assert out.exit_code == 0, out.output
        assert [h["id"] for h in json.loads(out.output)["hits"]] == [
            h.id for h in pf.search(question, k=3, mode="hybrid").hits
        ]
