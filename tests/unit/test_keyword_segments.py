"""The live keyword index (tantivy segments): upserts, deletes, commits, readers in other processes, statistics."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from shortlist.errors import ConfigError, InputError, StoreError
from shortlist.keywords.bm25 import BM25_B, BM25_K1, KeywordIndex, tokenize
from shortlist.keywords.segments import DEFAULT_RESCORE_DEPTH, LIVE_B, LIVE_K1, LiveKeywordIndex, text_hash

DOCS = {
    "en1": "Running studies on cats and their purring",
    "en2": "Dogs bark loudly at other dogs",
    "en3": "A bird sings in the morning",
    "zh1": "北京大学的学生在图书馆学习",
    "zh2": "机器学习 with Python",
}


def _writer(
    folder: Path, docs: dict[str, str] | None = None, rescore_depth: int = DEFAULT_RESCORE_DEPTH
) -> LiveKeywordIndex:
    index = LiveKeywordIndex.open(folder, writer=True, rescore_depth=rescore_depth)
    if docs:
        index.add(list(docs), list(docs.values()))
        index.commit()
    return index


def _ids(hits: list[tuple[str, float]]) -> list[str]:
    return [i for i, _ in hits]


def test_english_and_chinese_terms_are_bm25_tokenize_terms(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        assert len(index) == len(DOCS)
        assert _ids(index.search("the runner ran; studied cat", 5))[0] == "en1"  # stemmed: run, studi, cat
        assert _ids(index.search("北京大学", 5)) == ["zh1"]  # a jieba word, not characters
        assert sorted(_ids(index.search("学习", 5))) == ["zh1", "zh2"]
        assert index.search("的", 5) == []  # a Chinese stop word, as in tokenize
        assert index.search("the and of", 5) == []  # English stop words only
        long_word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 2  # no length limit on terms
        index.add(["long"], [f"{long_word} {long_word}"])
        index.commit()
        assert _ids(index.search(long_word, 5)) == ["long"] and index.doc_freq(tokenize(long_word)[0]) == 1
        for term in tokenize(DOCS["zh1"]):
            assert index.doc_freq(term) >= 1


def test_rescored_scores_are_todays_keyword_index_scores(tmp_path: Path) -> None:
    docs = DOCS | {f"n{i}": f"cats {'dogs ' * (i % 3)}news item {i} in 北京" for i in range(30)}
    today = KeywordIndex.build(docs.items())
    with _writer(tmp_path, docs) as index:
        assert (index.k1, index.b) == (BM25_K1, BM25_B)
        for query in ("cats", "dogs barking loudly", "news 北京 学习", "item 7 cats cats"):
            got, want = index.search(query, 10), today.search(query, 10)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)
            assert {i for i, _ in got} == {i for i, _ in want}  # ties may come in another order
            texts = ["cats and dogs", "北京的新闻", "nothing here"]
            assert index.score_texts(query, texts) == pytest.approx(list(today.score_texts(query, texts)), rel=1e-5)
        # after deletes and replacements, the scores are those of an index built from the live documents only
        index.delete([f"n{i}" for i in range(0, 30, 2)])
        index.add(["n1", "en1"], ["dogs dogs dogs", "cats in 北京"])
        index.commit()
        live = {i: t for i, t in docs.items() if not (i.startswith("n") and int(i[1:]) % 2 == 0)}
        live |= {"n1": "dogs dogs dogs", "en1": "cats in 北京"}
        fresh = KeywordIndex.build(live.items())
        assert index.stats().deleted > 0
        for query in ("cats", "dogs", "北京 news"):
            got, want = index.search(query, 40), fresh.search(query, 40)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)
            # an indexed chunk scored by id (from its kept terms) is its text scored; an unknown id is None
            ids = ["n1", "en1", "n3", "gone", "n0"]
            texts = [live.get(i, "") for i in ids]
            by_text = index.score_texts(query, texts)
            assert index.score_ids(query, ids) == [
                pytest.approx(b, rel=1e-9) if i in live else None for i, b in zip(ids, by_text, strict=True)
            ]
        assert index.score_ids("cats", []) == [] and index.score_ids("the", ["n1"]) == [0.0]  # a stop word only


def test_tantivy_scores_are_lucene_bm25_on_bm25s_scale(tmp_path: Path) -> None:
    docs = {"a": "cat cat dog", "b": "cat fish bird owl", "c": "bird"}
    with _writer(tmp_path, docs, rescore_depth=0) as index:
        assert (index.k1, index.b) == (LIVE_K1, LIVE_B)
        n, avgdl = 3, (3 + 4 + 1) / 3
        idf = math.log(1 + (n - 2 + 0.5) / (2 + 0.5))
        expected = {
            "a": idf * 2 / (2 + LIVE_K1 * (1 - LIVE_B + LIVE_B * 3 / avgdl)),
            "b": idf * 1 / (1 + LIVE_K1 * (1 - LIVE_B + LIVE_B * 4 / avgdl)),
        }
        hits = index.search("cat", 10)
        assert _ids(hits) == ["a", "b"]
        for id_, score in hits:
            assert score == pytest.approx(expected[id_], rel=1e-5)
        assert index.score_texts("cat", ["cat cat dog"])[0] == pytest.approx(expected["a"], rel=1e-5)
        # a repeated query term counts twice, as bm25s sums it
        assert index.search("cat cat", 1)[0][1] == pytest.approx(2 * expected["a"], rel=1e-5)


def test_add_is_an_upsert_and_writes_show_at_commit(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        index.add(["en2"], ["A parrot talks"])
        assert _ids(index.search("dogs", 5)) == ["en2"]  # not committed yet
        first = index.stats().opstamp
        second = index.commit()
        assert second > first
        assert index.search("dogs", 5) == []
        assert _ids(index.search("parrot", 5)) == ["en2"]
        assert len(index) == 5  # a replacement, same count
        index.add(["x", "x"], ["first owl", "second heron"])  # a repeated id keeps its last text
        index.commit()
        assert index.search("owl", 5) == [] and _ids(index.search("heron", 5)) == ["x"]
        assert len(index) == 6


def test_the_token_total_follows_upserts_and_deletes(tmp_path: Path) -> None:
    with LiveKeywordIndex.open(tmp_path / "idx", writer=True) as index:
        assert index.token_total() == 0
        index.add(["a", "b"], ["cats purr", "dogs bark"], [7, 5])
        index.add(["c"], ["no count given"])  # 0
        index.commit()
        assert index.token_total() == 12
        index.add(["a"], ["cats purr louder"], [9])  # a replacement counts once, with its new count
        index.delete(["b"])
        index.commit()
        assert index.token_total() == 9 and len(index) == 2


def test_text_hashes_show_which_texts_changed(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        assert index.text_hashes(["en1", "zh1", "nope"]) == {
            "en1": text_hash(DOCS["en1"]),
            "zh1": text_hash(DOCS["zh1"]),
        }
        index.add(["en1"], ["A new text for en1"])
        index.add_terms(["t"], [["term"]])  # from terms, without a hash
        index.commit()
        assert index.text_hashes(["en1", "t"]) == {"en1": text_hash("A new text for en1"), "t": 0}
        assert text_hash(DOCS["en1"]) != text_hash("A new text for en1")
        with pytest.raises(InputError, match="a hash and a token count per id"):
            index.add_terms(["u", "v"], [["a"], ["b"]], [1])


def test_delete_and_rollback(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        index.delete(["en1", "no-such-id"])
        index.commit()
        assert index.search("cats", 5) == [] and len(index) == 4
        index.add(["en9"], ["cats again"])
        index.delete(["en3"])
        index.rollback()
        index.commit()
        assert index.search("cats", 5) == [] and _ids(index.search("bird", 5)) == ["en3"]


@pytest.mark.parametrize("rescore_depth", [0, DEFAULT_RESCORE_DEPTH])
def test_idf_counts_live_documents_only_before_any_merge(tmp_path: Path, rescore_depth: int) -> None:
    # every text has two terms, so the average length is the same with or without the deleted ones
    live = {f"k{i}": f"common word{i}" for i in range(6)} | {"r": "rare common"}
    dead = {f"d{i}": f"rare other{i}" for i in range(5)}
    with (
        _writer(tmp_path / "churned", live | dead, rescore_depth) as churned,
        _writer(tmp_path / "fresh", live, rescore_depth) as fresh,
    ):
        churned.delete(list(dead))
        churned.commit()
        stats = churned.stats()
        assert stats.live == 7 and stats.deleted == 5  # tantivy has not merged them away: still in its N and df
        assert churned.doc_freq("rare") == fresh.doc_freq("rare") == 1
        for query in ("rare", "common", "rare common word3"):
            got, want = churned.search(query, 10), fresh.search(query, 10)
            assert _ids(got) == _ids(want)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)


def test_segments_merge_and_drop_deleted_documents(tmp_path: Path) -> None:
    with _writer(tmp_path) as index:
        for c in range(12):  # a commit per batch: a segment each, merged by tantivy (8 of a size) in the background
            index.add([f"d{c}-{i}" for i in range(20)], [f"word{i} common text {c}" for i in range(20)])
            index.delete([f"d{c - 1}-{i}" for i in range(10)])
            index.commit()
    stats = LiveKeywordIndex.open(tmp_path).stats()  # close() waited for the running merges
    assert stats.live == 12 * 20 - 11 * 10
    assert stats.segments < 12 and stats.deleted < 11 * 10


def test_searches_in_threads_while_the_writer_commits(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        seen: list[set[str]] = []
        errors: list[BaseException] = []
        done = threading.Event()

        def search() -> None:
            try:
                while not done.is_set():
                    seen.append({i for i, _ in index.search("parrot dogs", 40)})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=search) for _ in range(2)]
        for thread in threads:
            thread.start()
        for n in range(10):  # each commit swaps the view under the running searches
            index.add([f"p{n}"], [f"parrot number {n}"])
            index.commit()
        done.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
        # every answer is one commit's state: en2, then en2 and the parrots added so far, in order
        assert seen and all(hits == {"en2"} | {f"p{n}" for n in range(len(hits) - 1)} for hits in seen)
        assert sorted(_ids(index.search("parrot", 40))) == sorted(f"p{n}" for n in range(10))


def test_allowed_ids(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        assert _ids(index.search("dogs cats bird", 5, allowed_ids=["en3", "zh1"])) == ["en3"]
        assert index.search("dogs", 5, allowed_ids=[]) == []
        assert index.search("dogs", 5, allowed_ids={"en1"}) == []
        assert index.search("dogs", 0) == []
        assert _ids(index.search("dogs", 10**12)) == ["en2"]  # a huge k is not a huge allocation


def test_query_syntax_is_text(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        syntax = ['title:dogs AND (bark OR "loud*")', "dogs^10 -cats +bird~2", "dogs [* TO *] {}", '"unclosed dogs']
        for query in syntax:
            assert "en2" in _ids(index.search(query, 5))
        assert index.search(':*"()[]{}^~-+!/\\', 5) == []
        assert index.search("", 5) == []


def test_bad_input_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        with pytest.raises(InputError, match="one text"):
            index.add(["a", "b"], ["only one"])
        with pytest.raises(InputError, match="non-empty strings"):
            index.add(["ok", ""], ["a text", "another"])
        with pytest.raises(InputError, match="non-empty strings"):
            index.delete([None])  # type: ignore[list-item]
        with pytest.raises(InputError, match="not one string"):
            index.delete("en2")
        with pytest.raises(InputError, match="white space"):
            index.add_terms(["t"], [["fine", "two words"]])
        with pytest.raises(InputError, match="white space"):
            index.add_terms(["t"], [["fine", ""]])
        index.commit()
        assert len(index) == 5 and _ids(index.search("dogs", 5)) == ["en2"]


def test_persisted_copy_reopens_without_tokenising(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as index:
        index.add(["p"], ["parrots"])
        index.commit(position="journal-0042")
        before = index.search("dogs cats 学习", 5)
    reader = LiveKeywordIndex.open(tmp_path)
    assert not reader.is_writer and len(reader) == 6 and reader.position == "journal-0042"
    assert reader.search("dogs cats 学习", 5) == before
    with pytest.raises(StoreError, match="writer=True"):
        reader.add(["z"], ["zebra"])
    with LiveKeywordIndex.open(tmp_path, writer=True) as again:  # the lock was let go at close
        again.delete(["p"])
        again.commit()
    reader.reload()
    assert len(reader) == 5 and reader.search("parrots", 5) == []
    assert LiveKeywordIndex.is_compatible(tmp_path)


def test_missing_or_foreign_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rescore_depth"):
        LiveKeywordIndex.open(tmp_path / "new", writer=True, rescore_depth=-1)
    with pytest.raises(ConfigError, match="rescore_factor"):
        LiveKeywordIndex.open(tmp_path / "new", writer=True, rescore_factor=-1.0)
    assert not (tmp_path / "new").exists()  # refused before anything was made
    with pytest.raises(StoreError, match="No keyword index"):
        LiveKeywordIndex.open(tmp_path / "nothing")
    with _writer(tmp_path / "old", DOCS):
        pass
    (tmp_path / "old" / "shortlist-segments.json").write_text(json.dumps({"format": "segments-0/2:1.2:0.75"}))
    assert not LiveKeywordIndex.is_compatible(tmp_path / "old")
    with pytest.raises(StoreError, match="delete the folder"):
        LiveKeywordIndex.open(tmp_path / "old")


_OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from shortlist.errors import StoreError
    from shortlist.keywords.segments import LiveKeywordIndex

    folder = sys.argv[1]
    try:
        LiveKeywordIndex.open(folder, writer=True)
    except StoreError as exc:
        print("writer refused:", exc, flush=True)
    reader = LiveKeywordIndex.open(folder)
    for line in sys.stdin:
        if line.strip() == "reload":
            reader.reload()
        print(len(reader), [i for i, _ in reader.search("parrots dogs", 5)], reader.position, flush=True)
    """
)


def test_a_reader_in_another_process_sees_commits_after_reload(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS) as writer:
        child = subprocess.Popen(
            [sys.executable, "-c", _OTHER_PROCESS, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            refused = child.stdout.readline()
            assert "writer refused" in refused and "already open for writing" in refused
            child.stdin.write("look\n")
            child.stdin.flush()
            assert child.stdout.readline().split(" ", 1) == ["5", "['en2'] None\n"]
            writer.add(["p"], ["parrots talk"])
            writer.delete(["en2"])
            child.stdin.write("look\n")  # not committed: the reader's view is unchanged
            child.stdin.flush()
            assert child.stdout.readline().startswith("5 ['en2']")
            writer.commit(position="j-7")
            child.stdin.write("look\n")  # committed, but the reader has not reloaded
            child.stdin.flush()
            assert child.stdout.readline().startswith("5 ['en2']")
            child.stdin.write("reload\n")
            child.stdin.flush()
            assert child.stdout.readline() == "5 ['p'] j-7\n"
        finally:
            child.stdin.close()
            child.wait(timeout=30)
        assert child.returncode == 0, child.stderr.read() if child.stderr else ""


def test_a_second_writer_in_this_process_is_refused(tmp_path: Path) -> None:
    with _writer(tmp_path, DOCS):
        with pytest.raises(StoreError, match="already open for writing"):
            LiveKeywordIndex.open(tmp_path, writer=True)
        assert len(LiveKeywordIndex.open(tmp_path)) == 5  # readers are fine
