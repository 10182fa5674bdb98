"""The demo on a small slice of the corpus: build, reuse, rebuild, and what it prints."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shortlist import Encoder
from shortlist.cli import cli
from shortlist.corpus import demo_corpus
from shortlist.demo import QUESTIONS, DemoQuestion, build_index, run

SMALL = ["assert", "augassign", "break", "continue", "pass", "del", "return", "global", "while", "lambda"]
DOCS = demo_corpus(topics=SMALL, include_docstrings=False)  # about 25 chunks
LIMIT = len(DOCS)
ASK = [
    DemoQuestion("What does the assert statement do?", mode="dense", expected=("topic:assert",)),
    DemoQuestion("How does x += 1 work?", expected=("topic:augassign",)),  # the default mode, hybrid
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "chroma"


@pytest.fixture(scope="module")
def first_run(encoder: Encoder, db: Path) -> str:
    out = io.StringIO()
    results = run(db=db, documents=DOCS, questions=ASK, k=2, encoder=encoder, out=out, progress=False)
    assert [r.hits[0].metadata["source"] for r in results] == ["topic:assert", "topic:augassign"]
    return out.getvalue()


def test_first_run_builds_and_prints_shortlists(first_run: str, db: Path) -> None:
    assert f"Building the demo index: {LIMIT} documents" in first_run
    assert "Built index 'python-docs'" in first_run
    assert "Q1. What does the assert statement do?   [dense]" in first_run
    assert "Q2. How does x += 1 work?   [hybrid]" in first_run
    assert "Keyword index (BM25" in first_run and "hybrid calibration" in first_run
    assert "a right document (topic:assert) at rank 1" in first_run
    assert first_run.count("searched ") == 2 and "tokens saved" in first_run
    marker = json.loads((db / ".shortlist-demo-python-docs.json").read_text())
    assert marker["documents"] == LIMIT and marker["chunks"] > LIMIT


def test_second_run_reuses_the_index(first_run: str, db: Path, encoder: Encoder) -> None:
    out = io.StringIO()
    run(db=db, documents=DOCS, questions=ASK[:1], k=1, encoder=encoder, out=out)
    text = out.getvalue()
    assert "Building" not in text
    assert text.startswith("Reusing index 'python-docs'")


def test_changed_or_unfinished_index_is_rebuilt(first_run: str, db: Path, encoder: Encoder) -> None:
    marker = db / ".shortlist-demo-python-docs.json"
    chunks = json.loads(marker.read_text())["chunks"]
    marker.unlink()  # as after an interrupted build
    pf, summary = build_index(db=db, documents=DOCS, encoder=encoder, out=io.StringIO())
    assert summary["built"] is True and pf.count() == chunks  # rebuilt from scratch, same chunks
    pf, summary = build_index(db=db, documents=DOCS, limit=3, encoder=encoder, out=io.StringIO())
    assert summary["built"] is True and pf.count() < chunks  # another slice: the collection holds exactly it
    pf, summary = build_index(db=db, documents=DOCS, limit=3, encoder=encoder, out=io.StringIO())
    assert summary["built"] is False
    pf, summary = build_index(db=db, documents=DOCS, limit=3, encoder=encoder, rebuild=True, out=io.StringIO())
    assert summary["built"] is True and pf.count() == summary["chunks"]


def test_shortlist_demo_command(encoder: Encoder, tmp_path: Path) -> None:
    args = ["demo", "--db", str(tmp_path / "db"), "--limit", "1", "--question", "What does assert do?", "-k", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Building the demo index: 1 document of" in result.output
    assert "Q1. What does assert do?" in result.output and "topic:assert" in result.output


def test_builtin_questions_are_checked_by_hand() -> None:
    assert len(QUESTIONS) >= 5
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in q.text) for q in QUESTIONS)  # a Chinese one
    # every question names its right documents, but the off-topic ones, which must get an empty shortlist
    assert all(q.expected or "off-topic" in q.note for q in QUESTIONS)
    assert sum(not q.expected for q in QUESTIONS) == 2
    assert {q.mode for q in QUESTIONS} <= {"dense", "keyword", "hybrid"}


def test_python_dash_m_demo_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shortlist.demo", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "--rebuild" in out.stdout and "--limit" in out.stdout
