"""clean_text, split_sentences and split_text on real text with the real tokenizer."""

from __future__ import annotations

import pydoc_data.topics

import pytest

from shortlist.errors import ConfigError, InputError
from shortlist.text import clean_text, count_tokens, split_sentences, split_text, token_windows


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ｈｅｌｌｏ\u3000ｗｏｒｌｄ", "Hello world"),  # full-width letters and the ideographic space
        ("a\t\tb   c", "a b c"),
        ("line one  \r\n\r\n\r\n\r\nline two", "line one\n\nline two"),
        ("bell\x07 and null\x00 gone", "bell and null gone"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("你好，世界！", "你好,世界!"),  # NFKC makes CJK full-width punctuation ASCII
        ("  \n\t ", ""),
        ("ﬁle", "file"),  # ligature
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_text_is_idempotent() -> None:
    text = pydoc_data.topics.topics["try"]
    once = clean_text(text)
    assert clean_text(once) == once


def test_clean_text_rejects_non_strings() -> None:
    with pytest.raises(InputError, match="expects a str"):
        clean_text(None)  # type: ignore[arg-type]


def test_split_sentences_english_and_chinese() -> None:
    assert split_sentences("One. Two! Three? Four") == ["One.", "Two!", "Three?", "Four"]
    assert split_sentences("你好。世界！这是什么？好的；再见") == ["你好。", "世界！", "这是什么？", "好的；", "再见"]
    # After NFKC the CJK question mark is ASCII, and still ends a sentence behind a CJK character.
    assert split_sentences(clean_text("这是什么？好的")) == ["这是什么?", "好的"]
    assert split_sentences("version 3.11 is out.\nNext line") == ["version 3.11 is out.", "Next line"]


@pytest.mark.parametrize("max_tokens", [8, 32, 128])
def test_split_text_never_exceeds_limit_on_real_docs(max_tokens: int) -> None:
    text = clean_text(pydoc_data.topics.topics["exceptions"] + pydoc_data.topics.topics["try"])
    chunks = split_text(text, max_tokens=max_tokens, overlap=max_tokens // 8)
    assert len(chunks) > 1
    assert max(count_tokens(c) for c in chunks) <= max_tokens
    # Nothing is lost or reordered: without overlap, the chunks put together are the text (white space aside).
    plain = split_text(text, max_tokens=max_tokens, overlap=0)
    assert "".join("".join(plain).split()) == "".join(text.split())


def test_split_text_cuts_on_sentence_ends() -> None:
    assert split_text("One. Two! Three?", max_tokens=4, overlap=0) == ["One. Two!", "Three?"]


def test_split_text_overlap_carries_last_sentence() -> None:
    text = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota. Kappa lambda mu."
    chunks = split_text(text, max_tokens=12, overlap=6)
    assert len(chunks) >= 2
    for before, after in zip(chunks, chunks[1:], strict=False):
        last_sentence = split_sentences(before)[-1]
        assert after.startswith(last_sentence)


def test_split_text_chinese_without_spaces() -> None:
    text = "天地玄黄宇宙洪荒日月盈昃辰宿列张" * 40  # 640 characters, no spaces, no punctuation
    chunks = split_text(text, max_tokens=50, overlap=5)
    assert len(chunks) >= 13
    assert max(count_tokens(c) for c in chunks) <= 50
    assert "".join(chunks).replace(" ", "").count("天") >= 40


def test_token_windows_cut_a_single_huge_word() -> None:
    # One 95-character "word" (~48 word pieces; BERT maps words over 100 characters to a single [UNK]).
    word = "x" * 95
    windows = token_windows(word, max_tokens=20)
    assert len(windows) > 1
    assert all(count_tokens(w) <= 20 for w in windows)
    assert "".join(windows) == word


def test_split_text_empty_and_bad_arguments() -> None:
    assert split_text("") == []
    assert split_text(" \n ") == []
    with pytest.raises(InputError):
        split_text(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_tokens"):
        split_text("text", max_tokens=0)
    with pytest.raises(ConfigError, match="overlap"):
        split_text("text", max_tokens=10, overlap=10)


def test_clean_text_drops_exactly_the_control_characters_but_tab_and_newline() -> None:
    import sys
    import unicodedata

    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.category(ch) == "Cs" or ch in "\r\n\t":  # lone surrogates; \r becomes \n
            continue
        dropped = clean_text(f"a{ch}b") == "ab"
        assert dropped == (unicodedata.category(ch) == "Cc" or ch in "\u200b\u200c\u200d\u2060\ufeff\u00ad"), hex(cp)
