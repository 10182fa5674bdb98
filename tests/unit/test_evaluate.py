"""Evaluation: loaders on small files written here, metrics checked against hand computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from shortlist.errors import ConfigError
from shortlist.evaluate import Dataset, evaluate, load_beir, load_dataset, load_squad2, load_stackfaq, ndcg_at_k


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_tsv(path: Path, rows: list[tuple[str, str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(4)])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "one"}, {"_id": "q2", "text": "two"},
                                            {"_id": "q3", "text": "no qrels"}, {"_id": "q4", "text": " "}])  # fmt: skip
    write_tsv(tmp_path / "qrels" / "test.tsv", [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d3", 1), ("q2", "d0", 0),
                                                ("q4", "d1", 1)])  # fmt: skip
    return tmp_path


def test_load_beir(beir: Path) -> None:
    ds = load_beir(beir)
    assert set(ds.corpus) == {"d0", "d1", "d2", "d3"}
    assert ds.queries == {"q1": "one", "q2": "two"}  # no qrels, or empty text: left out
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 1}}  # grade 0 is not relevant
    docs = ds.documents()
    assert docs[1] == {"id": "d1", "text": "T1\ntext 1", "metadata": {"title": "T1"}}
    assert load_dataset(beir).queries == ds.queries


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corpus.jsonl"):
        load_beir(tmp_path)
    with pytest.raises(ConfigError, match="not a dataset folder"):
        load_dataset(tmp_path)


def test_ndcg_by_hand() -> None:
    rel = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b"], rel) == pytest.approx(1.0)
    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["b", "a"], rel) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["x", "y"], rel) == 0.0
    assert ndcg_at_k(["x"] * 10 + ["a"], rel, 10) == 0.0


def test_evaluate_metrics(beir: Path) -> None:
    ds = load_beir(beir)
    answers = {"one": ["d0", "d1", "d2"], "two": ["d3", "d0", "d2"]}
    rep = evaluate(lambda q, depth: answers[q][:depth], ds, ks=(1, 2, 3))
    assert rep.queries == 2
    assert rep.top1 == 0.5  # q2: d3 is relevant
    assert rep.recall == {1: pytest.approx(0.25), 2: pytest.approx(0.5 + 0.25), 3: pytest.approx(1.0)}
    assert rep.mrr[1] == 0.5 and rep.mrr[3] == pytest.approx((1 / 2 + 1) / 2)
    q2 = (1 / math.log2(2) + 2 / math.log2(4)) / (2 / math.log2(2) + 1 / math.log2(3))
    assert rep.ndcg10 == pytest.approx((1 / math.log2(3) + q2) / 2)
    assert rep.latency_ms["p50"] >= 0 and "nDCG@10" in rep.format()


def test_evaluate_refuses_bad_options(beir: Path) -> None:
    ds = load_beir(beir)
    with pytest.raises(ConfigError):
        evaluate(lambda q, d: [], ds, ks=())
    with pytest.raises(ConfigError, match="no queries"):
        evaluate(lambda q, d: [], Dataset("empty", {}, {}, {}))


def test_load_squad2(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "passages.jsonl", [{"_id": "p0", "title": "Normans", "text": "The Normans..."}])
    write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {"_id": "a", "text": "Who?", "answers": ["x"], "passage_id": "p0", "answerable": True},
            {"_id": "u", "text": "Why?", "answers": [], "passage_id": "p0", "answerable": False},
        ],
    )
    ds = load_dataset(tmp_path)
    assert ds.queries == {"a": "Who?"} and ds.qrels == {"a": {"p0": 1}} and ds.unanswerable == {"u": "Why?"}
    assert load_squad2(tmp_path).corpus == ds.corpus


def test_load_stackfaq(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "faq_questions.jsonl", [{"_id": "faq0", "question": "Strike?", "answers": ["Use ~~"]}])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "faq0_q0", "text": "cross out", "faq_id": "faq0"}])
    write_tsv(tmp_path / "qrels" / "query_to_faq.tsv", [("faq0_q0", "faq0", 1)])
    ds = load_dataset(tmp_path)
    assert ds.corpus == {"faq0": {"title": "Strike?", "text": ""}}
    assert ds.documents()[0]["text"] == "Strike?"
    assert load_stackfaq(tmp_path, with_answers=True).documents()[0]["text"] == "Strike?\nUse ~~"


def test_subset_is_deterministic(beir: Path) -> None:
    ds = load_beir(beir)
    assert ds.subset(1, seed=3).queries == ds.subset(1, seed=3).queries
    assert len(ds.subset(1).queries) == 1
