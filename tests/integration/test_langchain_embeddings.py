"""MiniLMEmbeddings (LangChain): the standard suites from langchain-tests, plus what they do not cover."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError

from shortlist import Encoder
from shortlist.errors import ConfigError, InputError
from shortlist.langchain import MiniLMEmbeddings

# The standard suites' async tests are plain `async def` methods: run them on pytest-asyncio's loop (the mark is
# module-wide because the suites' methods cannot be marked one by one; it is a no-op on the sync tests).
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .* is marked with '@pytest.mark.asyncio':pytest.PytestWarning"
    ),
]


class TestMiniLMEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[MiniLMEmbeddings]:
        return MiniLMEmbeddings

    # init_from_env_params is left empty (test_init_from_env skips): there is no API key, and SHORTLIST_MODEL /
    # SHORTLIST_DEVICE / SHORTLIST_BACKEND are resolved by the Encoder, tested in tests/unit/test_model_config.py.


class TestMiniLMEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[MiniLMEmbeddings]:
        return MiniLMEmbeddings


TEXTS = [
    "The cat sits on the mat.",
    "Stock markets fell sharply on Monday.",
    "Photosynthesis turns light into chemical energy.",
]


def test_uses_the_shared_encoder_by_default(encoder: Encoder) -> None:
    emb = MiniLMEmbeddings()
    assert isinstance(emb, Embeddings)
    assert emb.encoder is encoder
    assert MiniLMEmbeddings(model=None).encoder is encoder  # the `model` alias, as in langchain-huggingface


def test_vectors_are_the_encoders(encoder: Encoder) -> None:
    emb = MiniLMEmbeddings()
    docs = emb.embed_documents(TEXTS)
    assert np.array_equal(np.asarray(docs, dtype=np.float32), encoder.embed_documents(TEXTS))
    query = emb.embed_query("Where is the cat?")
    assert np.array_equal(np.asarray(query, dtype=np.float32), encoder.embed_query("Where is the cat?"))
    assert all(len(v) == 384 for v in docs) and len(query) == 384
    assert np.allclose(np.linalg.norm(np.asarray(docs), axis=1), 1.0, atol=1e-5)
    # Cosine = dot product; the cat sentence is the best match for the cat question.
    sims = np.asarray(docs) @ np.asarray(query)
    assert int(np.argmax(sims)) == 0


def test_batch_size_is_passed_to_the_encoder(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int | None]] = []
    original = encoder.embed_documents

    def spy(texts, batch_size=None, **kw):  # type: ignore[no-untyped-def]
        seen.append((len(texts), batch_size))
        return original(texts, batch_size=batch_size, **kw)

    monkeypatch.setattr(encoder, "embed_documents", spy)
    MiniLMEmbeddings(batch_size=2).embed_documents(TEXTS)
    assert seen == [(3, 2)]  # one call for the whole list, forward passes of 2


def test_given_encoder_is_used() -> None:
    own = Encoder(query_cache_size=0)  # not the shared one (nothing is loaded until it embeds)
    emb = MiniLMEmbeddings(encoder=own)
    assert emb.encoder is own and emb.encoder is not Encoder.shared()


@pytest.mark.parametrize(
    "kwargs",
    [{"device": "cpu"}, {"model": "sentence-transformers/all-MiniLM-L6-v2"}, {"backend": "onnx"}],
)
def test_encoder_and_model_settings_conflict(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="not both"):
        MiniLMEmbeddings(encoder=Encoder.shared(), **kwargs)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValidationError):
        MiniLMEmbeddings(batch_size=0)
    with pytest.raises(ValidationError):
        MiniLMEmbeddings(normalize=True)  # extra="forbid": a typo is not silently ignored
    with pytest.raises(ValidationError):
        MiniLMEmbeddings(backend="tensorflow")
    with pytest.raises(ConfigError, match="shortlist Encoder"):
        MiniLMEmbeddings(encoder="all-MiniLM-L6-v2")  # type: ignore[arg-type]


def test_bad_input_is_refused_with_the_position() -> None:
    emb = MiniLMEmbeddings()
    with pytest.raises(InputError, match=r"texts\[1\]"):
        emb.embed_documents(["fine", "   "])
    with pytest.raises(InputError, match="wrap a single text in a list"):
        emb.embed_documents("one text")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="expects a str"):
        emb.embed_query(["a", "b"])  # type: ignore[arg-type]
    assert emb.embed_documents([]) == []


async def _ticks_while(coro_factory):  # type: ignore[no-untyped-def]
    """Run the coroutine while a ticker sleeps 1 ms at a time; return (result, ticks seen before it finished)."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # let the ticker start
    result = await coro_factory()
    seen = ticks
    stop.set()
    await task
    return result, seen


async def test_async_embedding_does_not_block_the_event_loop(encoder: Encoder) -> None:
    emb = MiniLMEmbeddings()
    texts = [f"Sentence number {i} about a topic that takes the model a moment to read. " * 3 for i in range(24)]
    docs, ticks = await _ticks_while(lambda: emb.aembed_documents(texts))
    # A blocking implementation would hold the loop for the whole batch: the ticker could not tick.
    assert ticks >= 3, ticks
    assert np.array_equal(np.asarray(docs, dtype=np.float32), encoder.embed_documents(texts))
    query = await emb.aembed_query("Where is the cat?")
    assert query == emb.embed_query("Where is the cat?")
