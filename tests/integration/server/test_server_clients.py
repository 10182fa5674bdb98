"""Real, unmodified clients against `shortlist serve` on 127.0.0.1: each gets the vectors Encoder.embed_documents
gives for the same texts."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np
import pytest

from shortlist import Encoder

if TYPE_CHECKING:
    from .conftest import LiveServer

TEXTS = ["How do I reset my password?", "Cats sleep for most of the day.", "Wir versenden Pakete in zwei Tagen."]
ATOL = 1e-6  # the server calls embed_documents on the same texts: equal up to float32 rounding of JSON


def assert_same_vectors(got: object, texts: list[str], encoder: Encoder) -> None:
    arr = np.asarray(got, dtype=np.float32)
    want = encoder.embed_documents(texts)
    assert arr.shape == want.shape == (len(texts), 384)
    np.testing.assert_allclose(arr, want, rtol=0, atol=ATOL)


def test_ollama_client_embed_and_embeddings(live: LiveServer, encoder: Encoder) -> None:
    ollama = pytest.importorskip("ollama")
    client = ollama.Client(host=live.url)
    resp = client.embed(model="all-minilm", input=TEXTS)
    assert_same_vectors(resp.embeddings, TEXTS, encoder)
    assert resp.prompt_eval_count == sum(encoder.count_tokens(t) for t in TEXTS)
    one = client.embed(model="all-minilm:latest", input=TEXTS[0])
    assert_same_vectors(one.embeddings, TEXTS[:1], encoder)
    old = client.embeddings(model="all-minilm", prompt=TEXTS[1])
    assert_same_vectors([old.embedding], TEXTS[1:2], encoder)
    names = [m.model for m in client.list().models]
    assert names == ["all-minilm:latest"]
    with pytest.raises(ollama.ResponseError) as info:
        client.embed(model="nomic-embed-text", input="x")
    assert info.value.status_code == 404 and "all-minilm" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:
        client.embed(model="all-minilm", input=["fine", "   "])
    assert info.value.status_code == 400 and "input[1] is empty" in info.value.error


def test_ollama_async_client(live: LiveServer, encoder: Encoder) -> None:
    ollama = pytest.importorskip("ollama")

    async def run() -> list[list[float]]:
        client = ollama.AsyncClient(host=live.url)
        answers = await asyncio.gather(*(client.embed(model="all-minilm", input=t) for t in TEXTS))
        return [a.embeddings[0] for a in answers]

    got = asyncio.run(run())
    # Concurrent requests may share one encoder batch: padding changes the last bits only.
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), encoder.embed_documents(TEXTS), atol=1e-5)


def test_openai_client_float_and_base64(live: LiveServer, encoder: Encoder) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)
    resp = client.embeddings.create(model="all-minilm", input=TEXTS)  # the client asks for base64 by default
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert_same_vectors([d.embedding for d in resp.data], TEXTS, encoder)
    tokens = sum(encoder.count_tokens(t) for t in TEXTS)
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == tokens
    floats = client.embeddings.create(model="all-minilm", input=TEXTS[0], encoding_format="float")
    assert_same_vectors([floats.data[0].embedding], TEXTS[:1], encoder)
    with pytest.raises(openai.NotFoundError, match="all-minilm"):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError, match="384"):
        client.embeddings.create(model="all-minilm", input="x", dimensions=256)
    with pytest.raises(openai.BadRequestError, match="token ids"):
        client.embeddings.create(model="all-minilm", input=[[101, 2023]])


def test_langchain_ollama_embeddings(live: LiveServer, encoder: Encoder) -> None:
    lco = pytest.importorskip("langchain_ollama")
    emb = lco.OllamaEmbeddings(model="all-minilm", base_url=live.url)
    assert_same_vectors(emb.embed_documents(TEXTS), TEXTS, encoder)
    assert_same_vectors([emb.embed_query(TEXTS[0])], TEXTS[:1], encoder)
    got = asyncio.run(emb.aembed_documents(TEXTS[1:]))
    assert_same_vectors(got, TEXTS[1:], encoder)


def test_langchain_openai_embeddings(live: LiveServer, encoder: Encoder) -> None:
    lcoa = pytest.importorskip("langchain_openai")
    emb = lcoa.OpenAIEmbeddings(
        model="all-minilm",
        base_url=live.url + "/v1",
        api_key="unused",
        check_embedding_ctx_length=False,  # send the texts, not tiktoken ids (and never download tiktoken's files)
        tiktoken_enabled=False,
        max_retries=0,
    )
    assert_same_vectors(emb.embed_documents(TEXTS), TEXTS, encoder)
    assert_same_vectors([emb.embed_query(TEXTS[2])], TEXTS[2:], encoder)


def test_llama_index_ollama_embedding(live: LiveServer, encoder: Encoder) -> None:
    li = pytest.importorskip("llama_index.embeddings.ollama")
    emb = li.OllamaEmbedding(model_name="all-minilm", base_url=live.url)
    assert_same_vectors(emb.get_text_embedding_batch(TEXTS), TEXTS, encoder)
    assert_same_vectors([emb.get_query_embedding(TEXTS[0])], TEXTS[:1], encoder)
    assert_same_vectors([asyncio.run(emb.aget_text_embedding(TEXTS[1]))], TEXTS[1:2], encoder)


def test_integrations_script_against_the_server(live: LiveServer) -> None:
    """integrations/serve_clients.py (the README's example) runs against a live server."""
    import subprocess
    import sys
    from pathlib import Path

    from .conftest import env_without_proxies

    script = Path(__file__).resolve().parents[3] / "integrations" / "serve_clients.py"
    out = subprocess.run(
        [sys.executable, str(script), "--url", live.url, "--query", "Do cats sleep a lot?"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_without_proxies(),
        check=True,
    ).stdout
    assert "ollama.Client.embed: 3 vectors of 384 dimensions" in out
    assert "1. " in out and "cats" in out.split("1. ", 1)[1].splitlines()[0]
