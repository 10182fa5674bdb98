"""Smoke tests: each script in integrations/ answers --help and runs end to end on small data, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

INTEGRATIONS = Path(__file__).resolve().parents[2] / "integrations"
SCRIPTS = ["langchain_chain.py", "llamaindex_query_engine.py", "evaluate_beir.py"]


def run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # The child inherits SHORTLIST_HOME from the isolated test environment: it never touches the user's data folder.
    return subprocess.run(
        [sys.executable, str(INTEGRATIONS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    out = run(script, "--help")
    assert out.stdout.startswith("usage:") and "--db" in out.stdout


def test_langchain_chain_on_a_slice() -> None:
    out = run("langchain_chain.py", "--slice", "How do I catch several exceptions in one except clause?")
    lines = out.stdout.splitlines()
    assert lines[1].split()[2] == "topic:try"  # "  1. 0.640  topic:try  '...'"
    assert "tokens with the pre-filter" in out.stdout and "saved" in out.stdout
    assert out.stdout.rstrip().splitlines()[-1].startswith("answer: (offline fake model)")


def test_llamaindex_query_engine_on_a_slice() -> None:
    out = run("llamaindex_query_engine.py", "--slice", "How do I read rows from a CSV file?")
    assert "doc:csv.reader" in out.stdout.splitlines()[1]
    assert "the LLM read" in out.stdout and "Context information is below" in out.stdout  # MockLLM echoes


def test_scripts_fail_clearly_without_the_demo_index(tmp_path: Path) -> None:
    out = run("langchain_chain.py", "--db", str(tmp_path / "db"), "anything", check=False)
    assert out.returncode != 0 and "run `make demo`" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_beir_on_a_tiny_folder(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    docs = {
        "a": "Honey bees pollinate flowers and make honey from nectar.",
        "b": "Volcanoes erupt lava and ash when magma rises through the crust.",
        "c": "The moon's gravity causes the ocean tides.",
        "d": "Vaccines train the immune system to recognise pathogens.",
    }
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    queries = {"q1": "What makes the sea rise and fall?", "q2": "Which insects make honey?"}
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tc\t1\nq2\ta\t1\n")
    out = run("evaluate_beir.py", str(root), "--db", str(tmp_path / "db"), "--ks", "1,3", "--json")
    data = json.loads(out.stdout)
    assert data["documents"] == 4 and data["queries"] == 2 and data["embedded"] == data["chunks"] == 4
    assert data["modes"]["dense"]["recall"]["1"] == 1.0  # both questions: the right document first
    assert set(data["modes"]) == {"dense", "hybrid"}
    bad = run("evaluate_beir.py", str(tmp_path), check=False)
    assert bad.returncode != 0 and "not a BEIR folder" in bad.stderr
