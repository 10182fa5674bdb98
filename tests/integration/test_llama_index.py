"""LlamaIndex adapters with real llama-index-core: MiniLMEmbedding in a VectorStoreIndex, ShortlistRetriever in a
RetrieverQueryEngine (MockLLM: no LLM is available offline)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from pydantic import ValidationError

from shortlist import Encoder, Prefilter
from shortlist.errors import ConfigError, InputError
from shortlist.llama_index import MiniLMEmbedding, ShortlistRetriever

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CORPUS = [
    ("cats", "pets", "Cats sleep twelve to sixteen hours a day, mostly in short naps."),
    ("dogs", "pets", "Dogs need daily walks and enjoy playing fetch in the park."),
    ("parrots", "pets", "Parrots can imitate human speech and often live for several decades."),
    ("stocks", "finance", "The stock market fell on Monday after weak quarterly earnings reports."),
    ("bonds", "finance", "Bond yields rose as investors expected the central bank to raise interest rates."),
    ("plants", "science", "Plants turn sunlight, water and carbon dioxide into sugar by photosynthesis."),
    ("volcano", "science", "Volcanoes erupt when molten rock rises through cracks in the Earth's crust."),
    ("lists", "code", "Python lists are mutable sequences; tuples cannot be changed after they are created."),
]
TEXT = {doc_id: text for doc_id, _, text in CORPUS}
QUESTIONS = {
    "How many hours a day do cats sleep?": "cats",
    "Why did share prices drop this week?": "stocks",
    "How do plants make their food?": "plants",
    "What makes a volcano erupt?": "volcano",
    "Can I modify a tuple in Python?": "lists",
}
QUESTION = "How many hours a day do cats sleep?"


@pytest.fixture
def llama_settings() -> Iterator[Any]:
    """LlamaIndex's global Settings with MockLLM (never a network LLM), restored afterwards."""
    saved = (Settings._embed_model, Settings._llm)
    Settings.llm = MockLLM()
    try:
        yield Settings
    finally:
        Settings._embed_model, Settings._llm = saved


@functools.cache
def _prefilter() -> Prefilter:
    pf = Prefilter.in_memory("llama-index-retriever", encoder=Encoder.shared())
    pf.add_documents([{"id": i, "text": t, "metadata": {"topic": topic}} for i, topic, t in CORPUS])
    return pf


@pytest.fixture
def pf(encoder: Encoder) -> Prefilter:
    return _prefilter()


def _spy(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """Record (number of texts, batch size) of every embed_documents call on the shared encoder."""
    calls: list[tuple[int, int | None]] = []
    original = encoder.embed_documents

    def spy(texts, batch_size=None, **kw):  # type: ignore[no-untyped-def]
        calls.append((len(texts), batch_size))
        return original(texts, batch_size=batch_size, **kw)

    monkeypatch.setattr(encoder, "embed_documents", spy)
    return calls


# ---------------------------------------------------------------------------------------------- embedding
def test_embedding_is_a_base_embedding_over_the_shared_encoder(encoder: Encoder) -> None:
    emb = MiniLMEmbedding()
    assert isinstance(emb, BaseEmbedding)
    assert MiniLMEmbedding.class_name() == "MiniLMEmbedding"
    assert emb.encoder is encoder  # the process's shared encoder, not a new model
    assert emb.model_name == encoder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert emb.embed_batch_size == encoder.batch_size
    dumped = emb.model_dump()
    assert "_encoder" not in dumped and "encoder" not in dumped  # a private attribute, not a serialised field
    assert emb.to_dict()["class_name"] == "MiniLMEmbedding"
    # LlamaIndex's serialisation round trip lands on the same shared encoder (no second model).
    assert MiniLMEmbedding.from_dict(emb.to_dict()).encoder is encoder


def test_vectors_are_the_encoders(encoder: Encoder) -> None:
    emb = MiniLMEmbedding()
    texts = [t for _, _, t in CORPUS]
    batch = emb.get_text_embedding_batch(texts)
    assert np.array_equal(np.asarray(batch, dtype=np.float32), encoder.embed_documents(texts))
    one = emb.get_text_embedding(texts[0])
    assert np.array_equal(np.asarray(one, dtype=np.float32), encoder.embed_documents([texts[0]])[0])
    query = emb.get_query_embedding(QUESTION)
    assert np.array_equal(np.asarray(query, dtype=np.float32), encoder.embed_query(QUESTION))
    assert len(query) == 384 and all(isinstance(x, float) for x in query)
    # LlamaIndex's own similarity (cosine) ranks the cat sentence first.
    assert max(range(len(texts)), key=lambda i: emb.similarity(query, batch[i])) == 0


def test_text_batches_are_embedded_a_batch_at_a_time(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(encoder, monkeypatch)
    emb = MiniLMEmbedding(embed_batch_size=4)
    texts = [f"Sentence {i} about something else entirely." for i in range(10)]
    vectors = emb.get_text_embedding_batch(texts)
    assert calls == [(4, 4), (4, 4), (2, 4)]  # not ten calls of one text
    assert len(vectors) == 10
    calls.clear()
    vectors_async = asyncio.run(emb.aget_text_embedding_batch(texts))
    assert calls == [(4, 4), (4, 4), (2, 4)]
    assert np.allclose(vectors_async, vectors, atol=1e-6)


def test_async_embedding_does_not_block_the_event_loop(encoder: Encoder) -> None:
    emb = MiniLMEmbedding()
    texts = [f"Sentence number {i} about a topic that takes the model a moment to read. " * 3 for i in range(24)]

    async def main() -> tuple[list[list[float]], int, list[float]]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        vectors = await emb.aget_text_embedding_batch(texts)
        seen = ticks
        stop.set()
        await task
        return vectors, seen, await emb.aget_query_embedding(QUESTION)

    vectors, ticks, query = asyncio.run(main())
    assert ticks >= 3, ticks  # a blocking call would have held the loop for the whole batch
    assert np.array_equal(np.asarray(vectors, dtype=np.float32), encoder.embed_documents(texts))
    assert query == emb.get_query_embedding(QUESTION)
    assert asyncio.run(emb.aget_text_embedding(texts[0])) == emb.get_text_embedding(texts[0])


def test_embedding_bad_configuration_and_input() -> None:
    with pytest.raises(ConfigError, match="not both"):
        MiniLMEmbedding(device="cpu", encoder=Encoder.shared())
    with pytest.raises(ConfigError, match="shortlist Encoder"):
        MiniLMEmbedding(encoder="all-MiniLM-L6-v2")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        MiniLMEmbedding(embed_batch_size=0)
    emb = MiniLMEmbedding()
    with pytest.raises(InputError, match="empty"):
        emb.get_text_embedding("   ")
    with pytest.raises(InputError, match=r"texts\[1\]"):
        emb.get_text_embedding_batch(["fine", ""])


# ---------------------------------------------------------------------------------------------- VectorStoreIndex
def test_vector_store_index_with_settings_embed_model(llama_settings: Any, encoder: Encoder) -> None:
    llama_settings.embed_model = MiniLMEmbedding()
    documents = [Document(text=t, id_=i, metadata={"topic": topic}) for i, topic, t in CORPUS]
    index = VectorStoreIndex.from_documents(documents)
    retriever = index.as_retriever(similarity_top_k=2)
    for question, expected in QUESTIONS.items():
        best = retriever.retrieve(question)[0]
        assert best.node.ref_doc_id == expected, question
        # LlamaIndex's score is the cosine of our vectors (LlamaIndex embeds the text with its metadata).
        embedded = best.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert TEXT[expected] in embedded
        cosine = float(encoder.embed_documents([embedded])[0] @ encoder.embed_query(question))
        assert best.score == pytest.approx(cosine, abs=1e-4)
    best = asyncio.run(retriever.aretrieve(QUESTION))[0]
    assert best.node.ref_doc_id == "cats"


def test_settings_are_restored_by_the_fixture() -> None:
    # Runs after the test above: the global embed model is no longer ours.
    assert not isinstance(Settings._embed_model, MiniLMEmbedding)


# ---------------------------------------------------------------------------------------------- retriever
def test_retriever_nodes_are_the_shortlist(pf: Prefilter, encoder: Encoder) -> None:
    retriever = ShortlistRetriever(pf, similarity_top_k=3)
    nodes = retriever.retrieve(QUESTION)
    hits = pf.search(QUESTION, k=3).hits
    assert len(nodes) == 3
    query = encoder.embed_query(QUESTION)
    for rank, (nws, hit) in enumerate(zip(nodes, hits, strict=True), start=1):
        assert isinstance(nws, NodeWithScore) and isinstance(nws.node, TextNode)
        assert nws.node.node_id == hit.id and nws.node.get_content() == hit.text
        assert nws.score == hit.score == nws.node.metadata["score"]
        assert nws.score == pytest.approx(float(encoder.embed_documents([hit.text])[0] @ query), abs=1e-4)
        assert nws.node.metadata["id"] == hit.id and nws.node.metadata["rank"] == rank
        assert nws.node.metadata["topic"] == hit.metadata["topic"]
        assert nws.node.ref_doc_id == hit.metadata["source"]
    assert nodes[0].node.get_content() == TEXT["cats"]
    # What the LLM reads: the text and the useful metadata, not the figures.
    llm_view = nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert TEXT["cats"] in llm_view and "topic: pets" in llm_view and "source: cats" in llm_view
    assert "score:" not in llm_view and "rank:" not in llm_view
    assert [n.node.node_id for n in asyncio.run(retriever.aretrieve(QUESTION))] == [h.id for h in hits]


def test_retriever_options(pf: Prefilter) -> None:
    finance = ShortlistRetriever.from_prefilter(pf, similarity_top_k=4, where={"topic": "finance"})
    nodes = finance.retrieve("What happened to prices?")
    assert len(nodes) == 2 and {n.node.metadata["topic"] for n in nodes} == {"finance"}
    strict = ShortlistRetriever(pf, min_score=0.5)
    assert strict.retrieve("quantum chromodynamics lattice gauge theory") == []
    hybrid = ShortlistRetriever(pf, similarity_top_k=2, mode="hybrid")
    assert [n.node.node_id for n in hybrid.retrieve(QUESTION)] == [
        h.id for h in pf.search(QUESTION, k=2, mode="hybrid").hits
    ]
    assert ShortlistRetriever(pf).search_options()["k"] == 4  # the pre-filter's default k


def test_retriever_bad_options(pf: Prefilter) -> None:
    with pytest.raises(ConfigError, match="shortlist Prefilter"):
        ShortlistRetriever("not a prefilter")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="k must be a positive int"):
        ShortlistRetriever(pf, similarity_top_k=0).retrieve(QUESTION)
    with pytest.raises(ConfigError, match="mmr_lambda"):
        ShortlistRetriever(pf, mmr=True, mmr_lambda=2.0).retrieve(QUESTION)
    with pytest.raises(TypeError):
        ShortlistRetriever(pf, top_k=2)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="Unknown search option 'top_k'"):
        ShortlistRetriever(pf).search_options(top_k=2)


# ---------------------------------------------------------------------------------------------- query engine
@pytest.mark.parametrize("run", ["sync", "async"])
def test_query_engine_answers_from_the_shortlist(pf: Prefilter, run: str) -> None:
    retriever = ShortlistRetriever(pf, similarity_top_k=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query(QUESTION) if run == "sync" else asyncio.run(engine.aquery(QUESTION))
    assert isinstance(response, Response)
    shortlist = pf.search(QUESTION, k=2)
    assert [n.node.node_id for n in response.source_nodes] == [h.id for h in shortlist.hits]
    assert [n.score for n in response.source_nodes] == [h.score for h in shortlist.hits]
    # MockLLM answers with the prompt it was given: the shortlisted chunks and the question are in it, nothing else.
    answer = str(response)
    assert QUESTION in answer
    for hit in shortlist.hits:
        assert hit.text in answer
    for text in set(TEXT.values()) - set(shortlist.texts):
        assert text not in answer


def test_a_titled_chunk_shows_its_title_once_to_the_llm(encoder: Encoder) -> None:
    pf = Prefilter.in_memory("li-titled", encoder=encoder, chunk_tokens=32, chunk_overlap=4)
    title = "Quokka care guide"
    body = (
        "Quokkas eat leaves, grasses and the stems of young shrubs. They need shade in the heat of the day. "
        "Keep fresh water near them at all times, and change it every morning. "
        "They sleep in dense bush during the day and feed at night, mostly alone."
    )
    pf.add_documents([{"id": "q", "text": f"{title}\n{body}", "metadata": {"title": title, "kind": "guide"}}])
    nodes = ShortlistRetriever(pf, similarity_top_k=5).retrieve("What do quokkas eat?")
    assert len(nodes) >= 2  # the title heads every chunk, not only the first
    for n in nodes:
        llm_text = n.node.get_content(metadata_mode=MetadataMode.LLM)
        assert llm_text.count(title) == 1 and "kind: guide" in llm_text
        assert n.node.metadata["title"] == title  # still in the metadata for the application
