"""Prefilter with the real model and real (in-memory or on-disk) Chroma, on Python's own reference docs."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest

from shortlist import Encoder, Prefilter
from shortlist.errors import ConfigError, EmbeddingModelMismatchError, InputError
from shortlist.prefilter import IngestReport, rrf

TOPICS = ["assert", "break", "class", "continue", "dict", "exceptions", "for", "if", "import", "lambda", "numbers",
          "return", "strings", "try", "while", "with", "yield", "global", "pass", "del"]  # fmt: skip


def corpus() -> list[dict]:
    return [
        {"id": name, "text": topics[name], "metadata": {"topic": name, "len": len(topics[name])}} for name in TOPICS
    ]


@pytest.fixture(scope="module")
def pf(encoder: Encoder) -> Prefilter:
    p = Prefilter.in_memory("python-docs", encoder=encoder)
    p.add_documents(corpus())
    return p


def test_ingest_reports_and_counts(pf: Prefilter, encoder: Encoder) -> None:
    assert pf.count() > len(TOPICS)  # split into chunks
    total = sum(c.tokens for batch in pf.store.iter_chunks() for c in batch)
    assert pf.corpus_tokens() == total > 0
    for batch in pf.store.iter_chunks():
        for c in batch:
            assert c.tokens == encoder.count_tokens(c.text) <= 128


def test_reingest_changes_nothing_and_embeds_nothing(pf: Prefilter) -> None:
    before = {c.id for b in pf.store.iter_chunks(include_text=False) for c in b}
    report = pf.add_documents(corpus())
    assert report.added == 0 and report.removed == 0 and report.updated == 0
    assert report.skipped == report.chunks == len(before)
    assert {c.id for b in pf.store.iter_chunks(include_text=False) for c in b} == before


def test_resume_after_an_interrupted_ingest(encoder: Encoder) -> None:
    docs = corpus()[:8]
    full = Prefilter.in_memory("resume-ref", encoder=encoder)
    expected = full.add_documents(docs, batch_size=4)

    p = Prefilter.in_memory("resume", encoder=encoder)
    seen: list[IngestReport] = []

    def stop_after_two(report: IngestReport) -> None:
        seen.append(report)
        if len(seen) == 2:
            raise KeyboardInterrupt  # the process is stopped half-way

    with pytest.raises(KeyboardInterrupt):
        p.add_documents(docs, batch_size=4, progress=stop_after_two)
    done = p.count()
    assert 0 < done < expected.chunks
    report = p.add_documents(docs, batch_size=4)
    assert report.added == expected.chunks - done  # only the missing chunks are embedded
    ids = [c.id for b in p.store.iter_chunks(include_text=False) for c in b]
    assert len(ids) == len(set(ids)) == expected.chunks
    assert p.corpus_tokens() == full.corpus_tokens()


def test_changed_document_replaces_its_chunks(encoder: Encoder) -> None:
    p = Prefilter.in_memory("changes", encoder=encoder)

    def scanned() -> int:
        return sum(c.tokens for b in p.store.iter_chunks(include_text=False) for c in b)

    first = p.add_documents([{"id": "a", "text": topics["assert"]}, {"id": "b", "text": topics["break"]}])
    assert first.corpus_tokens == scanned() > 0  # the report's figure (the keyword copy's sum) is the scan's
    n_b = len(p.store.ids_of_sources(["b"]))
    report = p.add_documents([{"id": "a", "text": "Assertions were rewritten. They are short now."}])
    assert report.removed > 0 and report.added == 1
    assert len(p.store.ids_of_sources(["a"])) == 1 and len(p.store.ids_of_sources(["b"])) == n_b
    assert p.corpus_tokens() == report.corpus_tokens == scanned() < first.corpus_tokens


def test_title_heads_every_chunk_within_the_budget(encoder: Encoder) -> None:
    title = "Zephyrine guide to the try statement"  # "zephyrine": a word only the title has
    body = topics["try"]
    assert "zephyrine" not in body.lower()
    on = Prefilter.in_memory("titled", encoder=encoder, chunk_tokens=64, chunk_overlap=8)
    off = Prefilter.in_memory("untitled", encoder=encoder, chunk_tokens=64, chunk_overlap=8, title_key=None)
    for p in (on, off):
        p.add_documents([{"id": "try", "text": f"{title}\n{body}", "metadata": {"title": title}}])
    chunks = [c for b in on.store.iter_chunks() for c in b]
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.startswith(title + "\n")
        assert not c.text[len(title) + 1 :].startswith(title)  # not twice at the head of the first chunk
        assert c.tokens == encoder.count_tokens(c.text) <= 64
    plain = [c.text for b in off.store.iter_chunks() for c in b]
    assert sum(t.startswith(title) for t in plain) == 1
    # BM25 now finds every chunk of the document by its title's words; without the header only the first.
    assert len(on.search("zephyrine", k=50, mode="keyword")) == len(chunks)
    assert len(off.search("zephyrine", k=50, mode="keyword")) == 1 < len(plain)


def test_title_is_taken_off_the_body_only_as_whole_words(encoder: Encoder) -> None:
    p = Prefilter.in_memory("title-words", encoder=encoder)
    p.add_documents(
        [
            {"id": "a", "text": "JSONDecoder turns text into objects.", "metadata": {"title": "JSON"}},
            {
                "id": "b",
                "text": "Reset\n  password\nClick the link we mail you.",
                "metadata": {"title": "Reset password"},
            },
        ]
    )
    texts = {c.source: c.text for b in p.store.iter_chunks() for c in b}
    assert texts["a"] == "JSON\nJSONDecoder turns text into objects."  # not "JSON\nDecoder ..."
    assert texts["b"] == "Reset password\nClick the link we mail you."  # white space may differ: not twice


def test_title_too_long_or_not_a_string_is_not_repeated(encoder: Encoder) -> None:
    p = Prefilter.in_memory("long-title", encoder=encoder, chunk_tokens=32, chunk_overlap=4)
    long_title = "A title that goes on and on about many things for far too many words to repeat"
    p.add_documents(
        [
            {"id": "a", "text": topics["pass"], "metadata": {"title": long_title}},
            {"id": "b", "text": topics["del"], "metadata": {"title": 42}},
        ]
    )
    texts = [c.text for b in p.store.iter_chunks() for c in b]
    assert not any(t.startswith(long_title) or t.startswith("42") for t in texts)
    with pytest.raises(ConfigError, match="title_key"):
        Prefilter.in_memory("bad-title-key", encoder=encoder, title_key="")


def test_duplicate_document_ids_in_one_call_keep_the_last(encoder: Encoder) -> None:
    p = Prefilter.in_memory("dupes", encoder=encoder)
    report = p.add_documents([{"id": "x", "text": "First version."}, {"id": "x", "text": "Second version."}, "Same."])
    assert p.count() == 2 and report.documents == 2
    assert {h.text for h in p.search("version", k=5)} == {"Second version.", "Same."}


def test_metadata_update_does_not_reembed(encoder: Encoder) -> None:
    p = Prefilter.in_memory("meta-update", encoder=encoder)
    p.add_documents(["A cat sat on the mat."], ids=["cat"], metadatas=[{"v": 1}])
    report = p.add_documents(["A cat sat on the mat."], ids=["cat"], metadatas=[{"v": 2}])
    assert (report.added, report.updated) == (0, 1)
    assert p.search("cat", k=1)[0].metadata == {"v": 2, "source": "cat", "chunk": 0}


@pytest.mark.slow
def test_more_chunks_than_chromas_batch_limit(encoder: Encoder) -> None:
    p = Prefilter.in_memory("big-batch", encoder=encoder)
    limit = p.store.max_batch_size
    assert limit == p.store.client.get_max_batch_size()
    n = limit + 40
    docs = [f"Item {i}." for i in range(n)]
    report = p.add_documents(docs, batch_size=n)  # one write larger than the limit
    assert report.added == n and p.count() == n
    assert p.add_documents(docs, batch_size=n).added == 0


def test_document_kinds(encoder: Encoder) -> None:
    class LangChainLike:
        def __init__(self, page_content: str, metadata: dict, id: str | None = None) -> None:
            self.page_content, self.metadata, self.id = page_content, metadata, id

    class LlamaIndexLike:
        def __init__(self, text: str, metadata: dict, id_: str) -> None:
            self.text, self.metadata, self.id_ = text, metadata, id_

    p = Prefilter.in_memory("kinds", encoder=encoder)
    p.add_documents(
        [
            "plain string",
            {"page_content": "dict page content", "metadata": {"source": "file.txt"}},
            LangChainLike("langchain doc", {"k": 1}, id="lc-1"),
            LlamaIndexLike("llama doc", {"k": 2}, id_="li-1"),
        ]
    )
    sources = {h.metadata["source"] for h in p.search("doc", k=10)}
    assert {"file.txt", "lc-1", "li-1"} <= sources and len(sources) == 4


def test_search_hits_and_stats(pf: Prefilter, encoder: Encoder) -> None:
    result = pf.search("How do I catch an exception?", k=5)
    assert len(result) == 5
    assert [h.rank for h in result] == [1, 2, 3, 4, 5]
    assert result[0].metadata["source"] in {"try", "exceptions"}
    q = encoder.embed_query("How do I catch an exception?")
    stored = {c.id: c.embedding for c in pf.store.get([h.id for h in result], include_embeddings=True)}
    for hit in result:
        assert hit.score == pytest.approx(float(stored[hit.id] @ q), abs=1e-4)  # the score is the cosine
        assert set(hit.metadata) >= {"source", "chunk", "topic"}
    s = result.stats
    assert s.chunks_total == pf.count() and s.candidates >= 5
    assert s.corpus_tokens == pf.corpus_tokens()
    assert s.kept_tokens == sum(encoder.count_tokens(h.text) for h in result)
    assert 0.9 < s.saved_share < 1.0
    assert {"embed", "vector", "total"} <= set(s.timings_ms)


def test_min_score_can_give_an_empty_shortlist(pf: Prefilter) -> None:
    top = pf.search("How do I catch an exception?", k=3)[0].score
    assert len(pf.search("How do I catch an exception?", k=3, min_score=top - 1e-4)) >= 1
    empty = pf.search("recipe for a chocolate cake with strawberries", k=3, min_score=0.5)
    assert len(empty) == 0 and empty.stats.kept_tokens == 0 and empty.stats.saved_share == 1.0


def test_where_and_where_document(pf: Prefilter) -> None:
    result = pf.search("loop", k=10, where={"topic": {"$in": ["while", "for"]}})
    assert result and {h.metadata["topic"] for h in result} <= {"while", "for"}
    result = pf.search("loop", k=10, where={"len": {"$gt": 10_000}})
    assert all(h.metadata["len"] > 10_000 for h in result)
    result = pf.search("loop", k=5, where_document={"$contains": "else"})
    assert result and all("else" in h.text for h in result)
    for mode in ("keyword", "hybrid"):
        result = pf.search("loop iteration", k=5, mode=mode, where={"topic": "while"})
        assert result and {h.metadata["topic"] for h in result} == {"while"}


def test_bad_filters_are_clear_errors(pf: Prefilter) -> None:
    with pytest.raises(InputError, match="'colour'.*Known fields"):
        pf.search("loop", where={"colour": "red"})
    with pytest.raises(InputError, match="Invalid where"):
        pf.search("loop", where={"topic": {"$regex": "w.*"}})
    with pytest.raises(InputError, match="where_document"):
        pf.search("loop", where_document={})


def test_keyword_and_hybrid_modes(pf: Prefilter) -> None:
    # An exact identifier: keyword search finds it; hybrid keeps it near the top.
    kw = pf.search("StopIteration", k=5, mode="keyword")
    assert kw and all("stopiteration" in h.text.lower() for h in kw)
    hy = pf.search("StopIteration", k=5, mode="hybrid")
    assert hy and "stopiteration" in hy[0].text.lower()
    assert {"vector", "keyword", "fuse"} <= set(hy.stats.timings_ms)
    for hit in hy:  # scores are cosine similarities in every mode
        assert -1.0 <= hit.score <= 1.0


def test_rrf_is_pluggable_and_sees_both_lists(encoder: Encoder, pf: Prefilter) -> None:
    calls = []

    def keyword_only(query, dense, keyword):
        calls.append((query, list(dense), list(keyword)))
        return rrf(query, dense, keyword, weights=(0.0, 1.0))

    p = Prefilter(store=pf.store, encoder=encoder, fusion=keyword_only)
    result = p.search("StopIteration", k=3, mode="hybrid")
    query, dense, keyword = calls[0]
    assert query == "StopIteration" and dense and keyword
    assert all(-1 <= s <= 1 for _, s in dense) and all(s > 0 for _, s in keyword)
    assert [h.id for h in result] == [i for i, _ in keyword[:3]]


def test_rrf_formula() -> None:
    fused = dict(rrf("q", [("a", 0.9), ("b", 0.8)], [("b", 5.0), ("c", 4.0)]))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61) and fused["c"] == pytest.approx(1 / 62)


def test_mmr_and_cap_per_source(encoder: Encoder) -> None:
    p = Prefilter.in_memory("mmr", encoder=encoder)
    same = "The while statement repeats a block as long as a condition is true."
    p.add_documents(
        [same, same + " It is a loop.", same + " Loops again.", "A for loop iterates over the items of a sequence."],
        ids=["w1", "w2", "w3", "f1"],
    )
    plain = p.search("how does a while loop work", k=2)
    assert {h.metadata["source"] for h in plain} <= {"w1", "w2", "w3"}
    diverse = p.search("how does a while loop work", k=2, mmr=True, mmr_lambda=0.3)
    assert "f1" in {h.metadata["source"] for h in diverse}
    assert "mmr" in diverse.stats.timings_ms


def test_max_per_source(pf: Prefilter) -> None:
    result = pf.search("exceptions and error handling", k=8, max_per_source=1)
    sources = [h.metadata["source"] for h in result]
    assert len(sources) == len(set(sources)) == 8


def test_token_budget(pf: Prefilter, encoder: Encoder) -> None:
    free = pf.search("how do loops work", k=8)
    budgeted = pf.search("how do loops work", k=8, budget=200)
    used = sum(encoder.count_tokens(h.text) for h in budgeted)
    assert 0 < used <= 200 and budgeted.stats.kept_tokens == used
    assert len(budgeted) < len(free)
    assert budgeted[0].id == free[0].id or encoder.count_tokens(free[0].text) > 200
    assert len(pf.search("how do loops work", k=8, budget=0)) == 0


def test_query_vector_and_bad_queries(pf: Prefilter, encoder: Encoder) -> None:
    vec = encoder.embed_query("How do I catch an exception?")
    by_text = pf.search("How do I catch an exception?", k=3)
    by_vec = pf.search(vec, k=3)
    assert [h.id for h in by_vec] == [h.id for h in by_text]
    count = pf.count()
    for bad, exc, match in [
        ("", InputError, "empty"),
        ("   \n\t", InputError, "empty"),
        (np.ones(10, dtype=np.float32), EmbeddingModelMismatchError, "10 dimensions"),
        (np.zeros(384, dtype=np.float32), InputError, "zero"),
        (None, InputError, "non-empty str"),
        ([], InputError, "non-empty str"),
    ]:
        with pytest.raises(exc, match=match):
            pf.search(bad, k=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="dense"):
        pf.search(vec, k=3, mode="hybrid")
    for kwargs, match in [
        ({"k": 0}, "k must"),
        ({"mode": "sparse"}, "mode"),
        ({"mmr_lambda": 2.0}, "mmr_lambda"),
        ({"fetch_k": 0}, "fetch_k"),
        ({"budget": -1}, "budget"),
        ({"min_score": float("nan")}, "min_score"),
    ]:
        with pytest.raises(ConfigError, match=match):
            pf.search("loop", **kwargs)
    assert pf.count() == count


def test_bad_documents_lose_nothing(encoder: Encoder) -> None:
    p = Prefilter.in_memory("bad-docs", encoder=encoder)
    p.add_documents(["Existing text."])
    for docs, match in [
        (["fine", ""], r"documents\[1\] is empty"),
        (["fine", 42], r"documents\[1\]"),
        ([{"text": "fine", "metadata": {"when": dt.date(2024, 1, 1)}}], "when"),
        ([{"text": "fine", "metadata": "not a dict"}], "metadata must be a dict"),
        ([{"text": "fine", "id": ""}], "non-empty str"),
    ]:
        with pytest.raises(InputError, match=match):
            p.add_documents(docs)
        assert p.count() == 1
    with pytest.raises(ConfigError, match="ids has 1 entries for 2"):
        p.add_documents(["a", "b"], ids=["x"])
    with pytest.raises(ConfigError, match="batch_size"):
        p.add_documents(["a"], batch_size=0)
    with pytest.raises(ConfigError, match="chunk_tokens"):
        Prefilter.in_memory("too-big", encoder=encoder, chunk_tokens=300)


def test_delete_keeps_keyword_index_in_step(encoder: Encoder) -> None:
    p = Prefilter.in_memory("delete-kw", encoder=encoder)
    p.add_documents([{"id": "w", "text": topics["while"]}, {"id": "f", "text": topics["for"]}])
    assert any(h.metadata["source"] == "w" for h in p.search("while", k=10, mode="keyword"))
    assert p.delete("w") > 0
    assert all(h.metadata["source"] == "f" for h in p.search("while", k=10, mode="keyword"))
    assert all(h.metadata["source"] == "f" for h in p.search("while", k=10, mode="hybrid"))
    assert p.corpus_tokens() == sum(c.tokens for b in p.store.iter_chunks(include_text=False) for c in b)


def test_eight_threads_get_the_same_results_as_one(pf: Prefilter) -> None:
    questions = [
        "How do I catch an exception?",
        "What does yield do?",
        "import a module",
        "lambda expressions",
        "break out of a loop",
        "string formatting",
        "dictionary keys",
        "with statement context manager",
    ]
    modes = ["dense", "hybrid"]
    jobs = [(q, m) for q in questions for m in modes] * 3
    serial = {(q, m): [(h.id, round(h.score, 5)) for h in pf.search(q, k=5, mode=m)] for q, m in jobs}
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda job: (job, pf.search(job[0], k=5, mode=job[1])), jobs))
    for job, result in parallel:
        assert [(h.id, round(h.score, 5)) for h in result] == serial[job]


def test_persistence_across_a_process_restart(
    tmp_path: Path, encoder: Encoder, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "db"
    script = textwrap.dedent(
        f"""
        from shortlist import Prefilter
        from pydoc_data.topics import topics
        pf = Prefilter("restart", path={str(db)!r})
        r = pf.add_documents([{{"id": n, "text": topics[n], "metadata": {{"topic": n}}}} for n in ("try", "while")])
        print(r.added, pf.count(), pf.corpus_tokens())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    added, count, tokens = map(int, out.stdout.split())
    assert added == count > 0
    with caplog.at_level(logging.INFO, logger="shortlist.prefilter"):
        pf = Prefilter("restart", path=db, encoder=encoder)  # a new process would see the same
        assert (pf.count(), pf.corpus_tokens()) == (count, tokens)
        assert pf.search("catch exceptions", k=1)[0].metadata["topic"] == "try"
        assert pf.search("while", k=1, mode="keyword")[0].metadata["topic"] == "while"
    # The other process's ingest built the keyword index and saved it beside Chroma: this one opened it.
    folder = pf._keywords.folder
    assert folder is not None and folder.parent == db / "shortlist-keyword"
    assert (folder / "shortlist-position.json").is_file()
    assert any("Opened the keyword index of" in r.message for r in caplog.records)
    assert not any("Built the keyword index" in r.message for r in caplog.records)
    assert pf.add_documents([{"id": "try", "text": topics["try"], "metadata": {"topic": "try"}}]).added == 0

    reopened = Prefilter("restart", path=db, encoder=encoder)
    assert reopened.search("while", k=1, mode="keyword")[0].metadata["topic"] == "while"
    # Another writer adds a document: the next keyword search of the first object sees it (no stale index).
    reopened.add_documents([{"id": "yield", "text": topics["yield"], "metadata": {"topic": "yield"}}])
    assert pf.search("generator yield expression", k=1, mode="keyword")[0].metadata["topic"] == "yield"


def test_opening_with_another_model_is_an_error(tmp_path: Path, encoder: Encoder) -> None:
    pf = Prefilter("model-check", path=tmp_path, encoder=encoder)
    pf.add_documents(["Some text."])

    class OtherEncoder:
        model_name = "someone/other-model"
        dimension = 384
        max_text_tokens = 254

    with pytest.raises(EmbeddingModelMismatchError, match="never mixes"):
        Prefilter("model-check", path=tmp_path, encoder=OtherEncoder())  # type: ignore[arg-type]
    assert Prefilter("model-check", path=tmp_path, encoder=encoder).count() == 1


def test_streamed_documents(encoder: Encoder) -> None:
    p = Prefilter.in_memory("stream", encoder=encoder)
    reports: list[IngestReport] = []
    gen = ({"id": n, "text": topics[n]} for n in ("pass", "del", "global"))
    report = p.add_documents(gen, batch_size=2, progress=reports.append)
    assert report.documents == 3 and report.added == p.count() > 0
    assert len(reports) >= 2 and reports[-1].chunks == report.chunks
    with pytest.raises(ConfigError, match="iterator"):
        p.add_documents(iter(["x"]), ids=["a"])
    bad = iter(["Fine text.", ""])
    with pytest.raises(InputError, match=r"documents\[1\]"):
        p.add_documents(bad, batch_size=1)
    assert p.count() == report.added + 1  # the good document before the bad one was written


def test_a_process_exits_cleanly_in_the_middle_of_a_background_calibration(tmp_path: Path) -> None:
    """A search on a collection without a calibration starts one in the background; the process ends at once."""
    script = textwrap.dedent(
        f"""
        from shortlist import Prefilter
        from shortlist.store import ChunkRecord
        pf = Prefilter("background", path={str(tmp_path / "db")!r})
        texts = [f"Sentence {{i}} is about topic {{i}}. It has a second sentence on item {{i}}." for i in range(80)]
        recs = [ChunkRecord(source=f"d{{i}}", chunk=0, text=t, tokens=12) for i, t in enumerate(texts)]
        pf.store.upsert(recs, pf.encoder.embed_documents(texts))  # below add_documents: no calibration yet
        pf.search("topic 7", k=2)  # the priors; a calibration starts in the background
        print("calibrating" if pf._keywords._cal_running else "done", flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Fatal Python error" not in out.stderr and out.stdout.strip() in {"calibrating", "done"}


def test_a_fresh_prefilters_first_search_warms_up_and_answers_as_the_next(tmp_path: Path, encoder: Encoder) -> None:
    import threading

    with Prefilter("warm", path=tmp_path / "db", encoder=encoder) as writer:
        writer.add_documents(corpus()[:8])
    question = "How does a for loop iterate over a sequence?"
    with Prefilter("warm", path=tmp_path / "db", encoder=encoder) as pf:
        first = pf.search(question, k=3, mode="hybrid")  # the keyword side opened beside the question's embedding
        assert not [t for t in threading.enumerate() if t.name.startswith("shortlist-warm-up")]  # joined
        second = pf.search(question, k=3, mode="hybrid")
        assert [h.id for h in first.hits] == [h.id for h in second.hits]
        assert [h.metadata["source"] for h in first.hits][0] == "for"
        assert pf.search(encoder.embed_query(question), k=3).hits  # a vector search: no warm-up, still fine
        # The chunk count a search reports (from the keyword copy) follows this process's writes at once.
        assert first.stats.chunks_total == pf.count()
        pf.add_documents(corpus()[8:9])
        assert pf.search(question, k=3).stats.chunks_total == pf.count() > first.stats.chunks_total
        pf.delete("for")
        assert pf.search(question, k=3).stats.chunks_total == pf.count()
