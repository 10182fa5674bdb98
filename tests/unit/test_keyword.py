"""BM25 keyword index: tokenisation (English stemming and stop words, Chinese by jieba) and ranking."""

from __future__ import annotations

import pytest

from shortlist.keyword import KeywordIndex, tokenize


def test_english_is_lowered_stemmed_and_stopwords_dropped() -> None:
    assert tokenize("The Running of the Studies") == ["run", "studi"]
    assert tokenize("Python 3.12 released") == ["python", "3", "12", "releas"]


def test_full_width_text_is_normalised_first() -> None:
    assert tokenize("Ｐｙｔｈｏｎ") == ["python"]


def test_chinese_is_cut_into_words_not_characters() -> None:
    terms = tokenize("我来到北京清华大学")
    assert "北京" in terms and "清华大学" in terms
    mixed = tokenize("机器学习 with Python")
    assert mixed[:2] == ["机器", "学习"] and mixed[-1] == "python"
    assert tokenize("你好，世界！") == ["你好", "世界"]  # punctuation is not a term
    assert tokenize("北京大学的学生") == ["北京大学", "学生"]  # nor a particle


def test_search_ranks_by_bm25_and_skips_non_matches() -> None:
    index = KeywordIndex.build(
        [("a", "cats purr softly"), ("b", "dogs bark loudly at dogs"), ("c", "a bird sings"), ("d", "dog food")]
    )
    hits = index.search("barking dogs", 10)
    assert [i for i, _ in hits] == ["b", "d"]
    assert hits[0][1] > hits[1][1] > 0
    assert index.search("elephants", 5) == []
    assert [i for i, _ in index.search("dog", 1)] == ["b"]  # "dogs" twice in a short text


def test_search_with_an_allowed_set() -> None:
    index = KeywordIndex.build([("a", "dogs bark"), ("b", "dogs bark a lot, dogs"), ("c", "cats")])
    assert [i for i, _ in index.search("dogs", 5, allowed={"a", "c"})] == ["a"]


def test_chinese_search() -> None:
    index = KeywordIndex.build(
        [("zh1", "北京是中国的首都"), ("zh2", "上海是一个大城市"), ("en", "Beijing is the capital")]
    )
    assert index.search("中国首都在哪里", 3)[0][0] == "zh1"
    assert [i for i, _ in index.search("上海", 3)] == ["zh2"]


def test_empty_index() -> None:
    index = KeywordIndex.build([])
    assert len(index) == 0 and index.search("anything", 3) == []


@pytest.mark.parametrize("k", [0, -1])
def test_non_positive_k_gives_nothing(k: int) -> None:
    assert KeywordIndex.build([("a", "dogs")]).search("dogs", k) == []


def test_save_and_load(tmp_path) -> None:
    index = KeywordIndex.build([("a", "dogs bark"), ("b", "cats purr"), ("c", "北京大学")], fingerprint="fp1")
    index.save(tmp_path / "kw")
    index.save(tmp_path / "kw")  # overwriting is fine
    loaded = KeywordIndex.load(tmp_path / "kw")
    assert loaded is not None and loaded.fingerprint == "fp1" and loaded.ids == index.ids
    for q in ("barking dog", "purring cats", "北京大学"):
        assert loaded.search(q, 3) == index.search(q, 3)
    assert KeywordIndex.load(tmp_path / "missing") is None
    (tmp_path / "kw" / "shortlist-ids.json").write_text("{broken")
    assert KeywordIndex.load(tmp_path / "kw") is None


def test_score_texts_matches_the_index_for_its_own_rows() -> None:
    rows = [("a", "cats purr softly at night"), ("b", "dogs bark loudly at the mailman"), ("c", "the cat and the dog")]
    index = KeywordIndex.build(rows)
    assert index.score_texts("barking dog cats", [t for _, t in rows]) == pytest.approx(
        index.scores("barking dog cats"), rel=1e-5
    )
    held_out = index.score_texts("barking dog", ["a dog barks", "nothing shared here"])
    assert held_out[0] > 0 and held_out[1] == 0
    assert index.score_texts("unknownword", ["unknownword"]).tolist() == [0.0]


def test_stop_words_are_bm25s_and_reading_them_does_not_import_bm25s() -> None:
    import subprocess
    import sys

    from bm25s.stopwords import STOPWORDS_EN

    from shortlist.keywords.bm25 import _STOPWORDS_ZH, _stopwords

    assert _stopwords() == frozenset(STOPWORDS_EN) | _STOPWORDS_ZH
    code = "import sys\nfrom shortlist.keywords.bm25 import tokenize\ntokenize('cats')\nprint('bm25s' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
