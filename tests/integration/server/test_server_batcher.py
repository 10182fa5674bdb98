"""The request batcher with the real encoder: concurrent callers share encoder calls and each gets its own rows; a
bad request fails alone; a full queue refuses; without batching every request is its own call."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from shortlist import Encoder
from shortlist.errors import ConfigError, InputError
from shortlist.server.app import Limits, create_app
from shortlist.server.batcher import EmbeddingBatcher, ServerBusyError

TEXTS = [f"Sentence {i} about {['cats', 'trains', 'tax forms', 'rain'][i % 4]}." for i in range(40)]


def test_concurrent_callers_share_calls_and_keep_their_rows(encoder: Encoder) -> None:
    batcher = EmbeddingBatcher(encoder, max_batch=16)

    async def run() -> list[tuple[np.ndarray, list[int]]]:
        try:
            return await asyncio.gather(*(batcher.embed([t]) for t in TEXTS))
        finally:
            await batcher.aclose()

    results = asyncio.run(run())
    got = np.concatenate([vectors for vectors, _ in results])
    np.testing.assert_allclose(got, encoder.embed_documents(TEXTS), atol=1e-5)
    assert [counts for _, counts in results] == [[encoder.count_tokens(t)] for t in TEXTS]
    assert batcher.stats.requests == len(TEXTS) and batcher.stats.texts == len(TEXTS)
    assert batcher.stats.batches <= -(-len(TEXTS) // 16) + 1  # all queued at once: full batches of 16
    assert batcher.stats.largest_batch == 16


def test_large_request_is_split_and_keeps_order(encoder: Encoder) -> None:
    batcher = EmbeddingBatcher(encoder, max_batch=8)

    async def run() -> tuple[np.ndarray, list[int]]:
        try:
            return await batcher.embed(TEXTS)
        finally:
            await batcher.aclose()

    vectors, counts = asyncio.run(run())
    np.testing.assert_allclose(vectors, encoder.embed_documents(TEXTS), atol=1e-5)
    assert len(counts) == len(TEXTS) and batcher.stats.batches == len(TEXTS) // 8


def test_a_bad_request_fails_alone(encoder: Encoder) -> None:
    batcher = EmbeddingBatcher(encoder, max_batch=64)

    async def run() -> list[object]:
        try:
            jobs = [batcher.embed(["fine one"]), batcher.embed([None]), batcher.embed(["fine two"])]  # type: ignore[list-item]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await batcher.aclose()

    good1, bad, good2 = asyncio.run(run())
    assert isinstance(bad, InputError)
    np.testing.assert_allclose(good1[0], encoder.embed_documents(["fine one"]), atol=1e-5)  # type: ignore[index]
    np.testing.assert_allclose(good2[0], encoder.embed_documents(["fine two"]), atol=1e-5)  # type: ignore[index]


def test_full_queue_refuses(encoder: Encoder) -> None:
    batcher = EmbeddingBatcher(encoder, max_batch=4, max_queue=4)

    async def run() -> list[object]:
        try:
            return await asyncio.gather(*(batcher.embed(TEXTS[i : i + 4]) for i in range(0, 40, 4)),
                                        return_exceptions=True)  # fmt: skip
        finally:
            await batcher.aclose()

    outcomes = asyncio.run(run())
    refused = [o for o in outcomes if isinstance(o, ServerBusyError)]
    assert refused and len(refused) < len(outcomes) and "Retry" in str(refused[0])
    assert batcher.stats.rejected == len(refused)


def test_without_batching_each_request_is_one_call(encoder: Encoder) -> None:
    batcher = EmbeddingBatcher(encoder, enabled=False)

    async def run() -> list[tuple[np.ndarray, list[int]]]:
        try:
            return await asyncio.gather(*(batcher.embed([t]) for t in TEXTS[:10]))
        finally:
            await batcher.aclose()

    results = asyncio.run(run())
    np.testing.assert_allclose(np.concatenate([v for v, _ in results]), encoder.embed_documents(TEXTS[:10]), atol=1e-5)
    assert batcher.stats.batches == 10 and batcher.stats.largest_batch == 1


def test_bad_settings_are_config_errors(encoder: Encoder) -> None:
    with pytest.raises(ConfigError, match="max_inputs"):
        Limits(max_inputs=0)
    with pytest.raises(ConfigError, match="max_batch"):
        create_app(encoder=encoder, max_batch=0, api_key="")
    with pytest.raises(ValueError, match="max_wait_ms"):
        EmbeddingBatcher(encoder, max_wait_ms=-1)
