"""The word-piece counts the server reports come from the encoder's own tokenisation of the texts (not a second
one): ``Encoder.embed_documents_with_counts`` gives the vectors of ``embed_documents`` and ``count_tokens``'s
counts, for short, cleaned and over-long texts alike."""

from __future__ import annotations

import numpy as np
import pytest

from shortlist import Encoder
from shortlist.errors import InputError

TEXTS = [
    "hello",
    "Full\u3000width\tspaces and a control\x07 character",  # cleaned before counting
    "Ünïcode 测试 text with rare words: zygote quokka",
    " ".join(["tokens"] * 400),  # over the 254-piece window: embedded window by window, counted whole
]


def test_counts_are_count_tokens_and_vectors_are_embed_documents(encoder: Encoder) -> None:
    vectors, counts = encoder.embed_documents_with_counts(TEXTS)
    assert counts == [encoder.count_tokens(t) for t in TEXTS]
    assert counts[-1] > encoder.max_text_tokens
    np.testing.assert_allclose(vectors, encoder.embed_documents(TEXTS), atol=1e-6)


def test_empty_and_bad_input_as_embed_documents(encoder: Encoder) -> None:
    vectors, counts = encoder.embed_documents_with_counts([])
    assert vectors.shape == (0, encoder.dimension) and counts == []
    with pytest.raises(InputError, match="texts\\[1\\]"):
        encoder.embed_documents_with_counts(["fine", "   "])
    with pytest.raises(InputError, match="wrap a single text in a list"):
        encoder.embed_documents_with_counts("one text")  # type: ignore[arg-type]
