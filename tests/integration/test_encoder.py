"""The shared encoder on the real model: vectors, caching, sharing, long text, bad input, threads."""

from __future__ import annotations

import json
import pydoc_data.topics
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from shortlist import Encoder
from shortlist.errors import ConfigError, InputError, TextTooLongError
from shortlist.text import token_windows

SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Stock markets fell sharply today.",
    "How do I read a file line by line in Python?",
]


def test_vectors_are_normalised_float32(encoder: Encoder) -> None:
    vectors = encoder.embed_documents(SENTENCES)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.5 > sims[0, 2]  # cat ~ kitten, not ~ stocks


def test_model_facts(encoder: Encoder) -> None:
    assert (encoder.dimension, encoder.max_tokens, encoder.max_text_tokens) == (384, 256, 254)
    assert encoder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert encoder.count_tokens("Hello world") == 2
    assert encoder.count_tokens("tokenization") == 2  # token ##ization


def test_query_equals_document_vector_and_is_cached(encoder: Encoder) -> None:
    text = "What is the capital of France?"
    doc = encoder.embed_documents([text])[0]
    first = encoder.embed_query(text)
    np.testing.assert_allclose(first, doc, atol=1e-6)
    first[:] = 0.0  # callers get a copy: the cache is not affected
    second = encoder.embed_query(text)
    np.testing.assert_allclose(second, doc, atol=1e-6)
    key = (text, encoder.long_text)
    assert key in encoder._cache


def test_query_cache_is_bounded() -> None:
    enc = Encoder(query_cache_size=2)
    for q in ("one", "two", "three"):
        enc.embed_query(q)
    assert [k[0] for k in enc._cache] == ["two", "three"]


def test_cleaning_makes_full_width_text_equal_to_ascii(encoder: Encoder) -> None:
    a, b = encoder.embed_documents(["Ｐｙｔｈｏｎ\u3000ｆｉｌｅｓ", "Python files"])
    assert float(a @ b) > 0.9999


def test_shared_returns_one_instance_per_key() -> None:
    a = Encoder.shared()
    assert Encoder.shared() is a
    assert a.backend_name == "onnx"  # the default on the CPU
    assert Encoder.shared("sentence-transformers/all-MiniLM-L6-v2", "cpu", "onnx") is a
    assert Encoder.shared(backend="torch") is not a


def test_one_load_per_model_device_backend_in_a_fresh_process() -> None:
    code = textwrap.dedent(
        """
        import json, threading
        from shortlist import Encoder
        from shortlist.encoder import loaded_models
        def use():
            Encoder.shared().embed_query("hello")
        threads = [threading.Thread(target=use) for _ in range(8)]
        [t.start() for t in threads]; [t.join() for t in threads]
        Encoder.shared(model="all-MiniLM-L6-v2").embed_documents(["a", "b"])
        print(json.dumps(loaded_models()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loads = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(loads) == 1, loads
    assert loads[0][1:] == ["cpu", "onnx"]


def test_a_loaded_sentence_transformer_can_be_passed_in(torch_encoder: Encoder, encoder: Encoder) -> None:
    assert torch_encoder._st_model is not None
    wrapped = Encoder(torch_encoder._st_model)
    assert wrapped.is_loaded and wrapped.backend_name == "torch"
    np.testing.assert_allclose(wrapped.embed_documents(SENTENCES), encoder.embed_documents(SENTENCES), atol=1e-5)
    with pytest.raises(ConfigError, match="torch"):
        Encoder(torch_encoder._st_model, backend="onnx")


LONG = pydoc_data.topics.topics["try"] + pydoc_data.topics.topics["exceptions"]


def test_long_text_split_is_the_weighted_mean_of_windows(encoder: Encoder) -> None:
    prepared = encoder.embed_documents  # the default policy is "split"
    vector = prepared([LONG])[0]
    from shortlist.text import clean_text

    windows = token_windows(clean_text(LONG), encoder.max_text_tokens, 0, encoder.tokenizer)
    assert len(windows) > 2
    parts = encoder.embed_documents(windows, long_text="error")
    weights = np.array([encoder.count_tokens(w) for w in windows], dtype=np.float32)
    expected = (parts * weights[:, None]).sum(axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(vector, expected, atol=1e-5)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # Not the same as the first window alone: the rest of the text counts.
    assert float(vector @ parts[0]) < 0.999


def test_long_text_truncate_warns_once(encoder: Encoder) -> None:
    enc = Encoder(long_text="truncate")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = enc.embed_documents([LONG, LONG])
        enc.embed_documents([LONG])
    assert len([w for w in caught if "truncate" in str(w.message)]) == 1
    from shortlist.text import clean_text

    head = token_windows(clean_text(LONG), 254, 0, enc.tokenizer)[0]
    np.testing.assert_allclose(first[0], enc.embed_documents([head])[0], atol=1e-6)


def test_long_text_error_names_the_text(encoder: Encoder) -> None:
    with pytest.raises(TextTooLongError, match=r"Text 1 has \d+ word pieces"):
        encoder.embed_documents(["short", LONG], long_text="error")


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["fine", None], r"texts\[1\] is None"),
        (["fine", 42], r"texts\[1\] is a int"),
        (["fine", "", "x"], r"texts\[1\] is empty"),
        (["  \n\t\u3000"], r"texts\[0\] is empty or white space"),
        ("a single string", "wrap a single text in a list"),
        (None, "expects a list of strings"),
    ],
)
def test_bad_documents_are_refused_with_their_position(encoder: Encoder, texts: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        encoder.embed_documents(texts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "message"),
    [(None, "expects a str"), (["a", "b"], "use embed_documents"), ("", "query is empty"), (b"bytes", "expects a str")],
)
def test_bad_queries_are_refused(encoder: Encoder, query: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        encoder.embed_query(query)  # type: ignore[arg-type]


def test_empty_list_and_bad_batch_size(encoder: Encoder) -> None:
    assert encoder.embed_documents([]).shape == (0, 384)
    with pytest.raises(ConfigError, match="batch_size"):
        encoder.embed_documents(["a"], batch_size=0)
    with pytest.raises(ConfigError, match="long_text"):
        Encoder(long_text="drop")  # type: ignore[arg-type]


def test_threads_get_the_single_threaded_results(encoder: Encoder) -> None:
    texts = [f"{s} (variant {i})" for i in range(12) for s in SENTENCES]
    expected = encoder.embed_documents(texts)
    expected_queries = np.stack([encoder.embed_documents([t])[0] for t in texts[:16]])
    fresh = Encoder(query_cache_size=0)  # the default backend, like the fixture

    def work(i: int) -> tuple[np.ndarray, np.ndarray]:
        return fresh.embed_documents(texts[i::8], batch_size=5), fresh.embed_query(texts[i])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(16)))
    for i, (docs, query) in enumerate(results):
        np.testing.assert_allclose(docs, expected[i::8], atol=1e-5)
        np.testing.assert_allclose(query, expected_queries[i], atol=1e-5)
