"""The `shortlist` command with the real model and a temporary embedded Chroma database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shortlist import Encoder
from shortlist.cli import cli, main

DOCS = {
    "cats.txt": "Cats sleep for most of the day. A cat purrs when it is content and hunts mice at night.",
    "python.md": "# Exceptions\n\nTo catch several exceptions in one except clause, list them in a tuple: "
    "except (ValueError, KeyError) as exc.",
    "finance.txt": "The stock market fell sharply on Monday as interest rates rose and investors sold bonds.",
}
FAQ = [
    {"_id": "faq-1", "title": "Reset password", "text": "Click 'Forgot password' on the login page.", "lang": "en"},
    {"_id": "faq-2", "title": "Opening hours", "text": "The shop opens at nine and closes at six.", "lang": "en"},
    {"_id": "faq-3", "title": "Versand", "text": "Wir versenden Pakete innerhalb von zwei Tagen.", "lang": "de"},
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "empty.txt").write_text("   \n", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG")  # not a supported type: ignored inside a folder
    (root / "faq.jsonl").write_text("\n".join(json.dumps(d) for d in FAQ) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BEIR folder: 6 documents, 3 queries with judgments."""
    root = tmp_path_factory.mktemp("beir")
    corpus = [
        ("d1", "Photosynthesis", "Plants turn sunlight, water and carbon dioxide into glucose and oxygen."),
        ("d2", "Volcanoes", "Magma rises through the crust and erupts as lava, ash and gas."),
        ("d3", "Vaccines", "A vaccine trains the immune system to recognise a pathogen without causing disease."),
        ("d4", "Tides", "The gravity of the moon pulls the oceans and causes high and low tides."),
        ("d5", "Bees", "Honey bees pollinate flowers and make honey from nectar in their hives."),
        ("d6", "Glaciers", "Glaciers are slow rivers of ice that carve valleys as they move."),
    ]
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc_id, title, text in corpus:
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries = [
        ("q1", "How do plants make sugar from light?"),
        ("q2", "Why does the sea level rise and fall?"),
        ("q3", "How do immunisations protect people?"),
    ]
    with (root / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in queries:
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\nq3\td3\t1\n")
    return root


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("db") / "chroma"


@pytest.fixture(scope="module")
def indexed(encoder: Encoder, corpus: Path, db: Path) -> Result:
    """The corpus indexed once into collection 'notes' (other tests read it)."""
    result = CliRunner().invoke(cli, ["index", str(corpus), "--collection", "notes", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return result


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result: Result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


# ---------------------------------------------------------------------------------------------------- similarity
def test_similarity_orders_related_above_unrelated(encoder: Encoder) -> None:
    related = run("similarity", "How do I read a file?", "Open the file and iterate over its lines.")
    unrelated = run("similarity", "How do I read a file?", "The weather is lovely today.")
    assert related.exit_code == 0 and unrelated.exit_code == 0
    assert float(related.output) > float(unrelated.output) + 0.2
    assert float(related.output) == pytest.approx(
        encoder.similarity("How do I read a file?", "Open the file and iterate over its lines."), abs=1e-4
    )


def test_similarity_json_and_errors(encoder: Encoder) -> None:
    result = run("similarity", "cat", "cat", "--json")
    data = json.loads(result.output)
    assert data["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert data["model"] == encoder.model_name
    assert_one_line_error(run("similarity", "  ", "x"), 2, "A is empty")
    assert_one_line_error(run("similarity", "only one"), 2, "Missing argument")


# ---------------------------------------------------------------------------------------------------- index
def test_index_summary_then_idempotent(indexed: Result, corpus: Path, db: Path) -> None:
    first = json.loads(indexed.output)
    assert first["documents"] == 6  # 3 files + 3 jsonl lines; the empty file and the .png are skipped
    assert first["added"] == first["chunks"] > 0
    assert first["tokens"] > 0 and first["seconds"] >= 0
    again = run("index", str(corpus), "--collection", "notes", "--db", str(db))
    assert again.exit_code == 0, again.output
    assert "Indexed 6 documents" in again.output
    assert "0 new" in again.output
    assert f"now holds {first['total_chunks']:,} chunks" in again.output


def test_index_errors(tmp_path: Path, encoder: Encoder) -> None:
    db = str(tmp_path / "db")
    assert_one_line_error(run("index", str(tmp_path / "missing"), "--db", db), 2, "does not exist")
    bad = tmp_path / "doc.pdf"
    bad.write_bytes(b"%PDF")  # PDF files are read now (shortlist.loaders): this one is corrupt
    assert_one_line_error(run("index", str(bad), "--db", db), 1, "doc.pdf: not a readable PDF")
    image = tmp_path / "logo.png"
    image.write_bytes(b"\x89PNG")
    assert_one_line_error(run("index", str(image), "--db", db), 1, "supported files are")
    lines = tmp_path / "rows.jsonl"
    lines.write_text('{"body": "no text field here"}\n', encoding="utf-8")
    assert_one_line_error(run("index", str(lines), "--db", db), 1, "rows.jsonl, line 1", "--text-field")
    result = run("index", str(lines), "--db", db, "--text-field", "body", "--collection", "rows")
    assert result.exit_code == 0, result.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok"}\n{not json\n', encoding="utf-8")
    assert_one_line_error(run("index", str(broken), "--db", db), 1, "line 2", "not valid JSON")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    assert_one_line_error(run("index", str(latin), "--db", db), 1, "not UTF-8")
    empty = tmp_path / "emptydir"
    empty.mkdir()
    assert_one_line_error(run("index", str(empty), "--db", db), 1, "Nothing to index")
    assert_one_line_error(run("index", str(empty), "--db", db, "--chunk-tokens", "32", "--overlap", "40"), 2)


def test_index_beir_folder_reads_only_the_corpus(beir: Path, tmp_path: Path, encoder: Encoder) -> None:
    result = run("index", str(beir), "--db", str(tmp_path / "db"), "--collection", "sci", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["documents"] == 6  # not the 3 queries


# ---------------------------------------------------------------------------------------------------- query
def test_query_table(indexed: Result, db: Path) -> None:
    result = run("query", "how do I catch two exceptions at once?", "--collection", "notes", "--db", str(db), "-k", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["#", "cosine", "source", "snippet"]
    assert lines[1].split()[0] == "1" and "python.md" in lines[1]
    assert lines[-1].startswith("searched ") and "tokens" in lines[-1] and "saved" in lines[-1] and "ms" in lines[-1]
    assert len(lines) == 4


def test_query_json_parses_and_matches_the_store(indexed: Result, db: Path) -> None:
    result = run("query", "stock prices and bonds", "-c", "notes", "--db", str(db), "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["query"] == "stock prices and bonds"
    assert [h["rank"] for h in data["hits"]] == [1, 2, 3]
    assert data["hits"][0]["source"].endswith("finance.txt")
    scores = [h["score"] for h in data["hits"]]
    assert scores == sorted(scores, reverse=True)
    stats = data["stats"]
    assert stats["chunks_total"] == json.loads(indexed.output)["total_chunks"]
    assert 0 < stats["kept_tokens"] < stats["corpus_tokens"]
    assert stats["saved_share"] == pytest.approx(1 - stats["kept_tokens"] / stats["corpus_tokens"], abs=1e-5)
    assert "total" in stats["timings_ms"]


def test_query_options(indexed: Result, db: Path) -> None:
    base = ["-c", "notes", "--db", str(db), "--json"]
    where = run("query", "opening times of the shop", *base, "--where", '{"lang": "de"}')
    assert where.exit_code == 0, where.output
    assert {h["source"] for h in json.loads(where.output)["hits"]} == {"faq-3"}
    hybrid = run("query", "Forgot password", *base, "--hybrid", "-k", "1")
    assert json.loads(hybrid.output)["hits"][0]["source"] == "faq-1"
    empty = run("query", "quantum chromodynamics of gluons", *base, "--min-score", "0.9")
    assert json.loads(empty.output)["hits"] == []
    table = run("query", "quantum chromodynamics of gluons", "-c", "notes", "--db", str(db), "--min-score", "0.9")
    assert "nothing to send to the LLM" in table.output
    budget = run("query", "cats", *base, "-k", "5", "--budget", "30")
    hits = json.loads(budget.output)["hits"]
    assert json.loads(budget.output)["stats"]["kept_tokens"] <= 30
    assert all(h["source"] for h in hits)


def test_query_errors(indexed: Result, db: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        run("query", "anything", "--db", str(tmp_path / "nowhere")), 1, "No collection 'shortlist'", "shortlist index"
    )
    assert_one_line_error(run("query", "anything", "--db", str(db), "-c", "other"), 1, "No collection 'other'", "notes")
    base = ["-c", "notes", "--db", str(db)]
    assert_one_line_error(run("query", "x", *base, "--where", "{lang: en}"), 2, "--where", "JSON")
    assert_one_line_error(run("query", "x", *base, "--where", "[1]"), 2, "JSON object")
    assert_one_line_error(run("query", "x", *base, "-k", "0"), 2, "-k")
    assert_one_line_error(run("query", "x", *base, "--hybrid", "--mode", "dense"), 2, "contradict")
    assert_one_line_error(run("query", " ", *base), 2, "empty")
    assert_one_line_error(run("query", "x", *base, "--where", '{"no_such_field": 1}'), 1, "no_such_field")


# ---------------------------------------------------------------------------------------------------- info
def test_info_lists_collections(indexed: Result, db: Path, encoder: Encoder) -> None:
    result = run("info", "--db", str(db), "--json")
    data = json.loads(result.output)
    assert data["model"] == encoder.model_name
    assert data["weights"] == encoder.source.location and data["weights_from"] == "package"
    assert data["backend"] == "onnx" and data["device"] == "cpu" and data["dimension"] == 384
    assert data["collections"]["notes"] == json.loads(indexed.output)["total_chunks"]
    text = run("info", "--db", str(db))
    assert "notes" in text.output and "chunks" in text.output and "weights" in text.output


def test_info_without_database(tmp_path: Path, encoder: Encoder) -> None:
    result = run("info", "--db", str(tmp_path / "none"))
    assert result.exit_code == 0
    assert "none yet" in result.output
    assert not (tmp_path / "none").exists()  # info never creates a database


def test_db_from_environment(indexed: Result, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORTLIST_CHROMA_PATH", str(db))
    result = run("query", "cats", "-c", "notes", "--json", "-k", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hits"][0]["source"].endswith("cats.txt")


# ---------------------------------------------------------------------------------------------------- eval
def test_eval_tiny_beir(beir: Path, tmp_path: Path, encoder: Encoder) -> None:
    args = ["eval", str(beir), "--db", str(tmp_path / "db"), "--hybrid", "-k", "1,3", "--shortlist-k", "1,2"]
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["documents"] == 6 and data["queries"] == 3 and data["embedded"] == data["chunks"]
    assert set(data["retrieval"]) == {"dense", "keyword", "hybrid"}
    dense = data["retrieval"]["dense"]
    assert dense["recall"]["3"] >= dense["recall"]["1"] >= 2 / 3  # easy paraphrases
    assert 0 <= dense["ndcg@10"] <= 1
    assert set(data["shortlist"]) == {"dense", "hybrid"}
    assert 0 < data["shortlist"]["dense"]["tokens_sent"]["1"] < data["shortlist"]["dense"]["tokens_sent"]["2"] < 1
    again = run(*args)  # table form, index reused
    assert again.exit_code == 0, again.output
    assert "reused the index" in again.output and "nDCG@10" in again.output and "tokens saved" in again.output
    base = ["eval", str(beir), "--db", str(tmp_path / "db"), "-k", "1,3", "--json"]

    def scores(report: dict) -> dict:
        return {k: v for k, v in report.items() if k != "latency_ms"}

    default = json.loads(run(*base).output)  # one mode: the default, hybrid
    assert set(default["retrieval"]) == {"hybrid"}
    assert scores(default["retrieval"]["hybrid"]) == scores(data["retrieval"]["hybrid"])
    only_dense = json.loads(run(*base, "--mode", "dense").output)
    assert set(only_dense["retrieval"]) == {"dense"} and scores(only_dense["retrieval"]["dense"]) == scores(dense)
    assert_one_line_error(run(*base, "--hybrid", "--mode", "dense"), 2, "contradict")


def test_eval_errors(tmp_path: Path, encoder: Encoder) -> None:
    assert_one_line_error(run("eval", str(tmp_path / "missing")), 2, "does not exist")
    assert_one_line_error(run("eval", str(tmp_path), "--db", str(tmp_path / "db")), 1, "not a dataset folder")
    assert_one_line_error(run("eval", str(tmp_path), "-k", "a,b"), 2, "-k")


# ---------------------------------------------------------------------------------------------------- entry points
def test_main_returns_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--version"]) == 0
    assert "shortlist" in capsys.readouterr().out
    assert main(["query", "x", "--db", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: No collection") and err.count("\n") == 1
    assert main(["no-such-command"]) == 2


def test_python_dash_m_help_is_fast_and_light() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, shortlist.cli; sys.argv=['shortlist','--help']; code = shortlist.cli.main(); "
            "print('torch' in sys.modules, 'chromadb' in sys.modules); raise SystemExit(code)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "index" in out.stdout and "query" in out.stdout and "similarity" in out.stdout
    assert out.stdout.strip().endswith("False False")  # --help imports neither torch nor chromadb
    mod = subprocess.run(
        [sys.executable, "-m", "shortlist", "query", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "--min-score" in mod.stdout and "--budget" in mod.stdout
    assert "\\b" not in out.stdout + mod.stdout  # click's no-rewrap marker is a real backspace, never shown
    assert "\n    shortlist query" in out.stdout  # the example lines keep their layout
