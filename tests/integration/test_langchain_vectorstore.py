"""ShortlistVectorStore (LangChain): langchain-tests' standard suite (sync and async), plus what it does not cover."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from shortlist import Encoder, Prefilter
from shortlist.errors import ConfigError, InputError
from shortlist.langchain import MiniLMEmbeddings, ShortlistVectorStore

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .* is marked with '@pytest.mark.asyncio':pytest.PytestWarning"
    ),
    # the standard suite searches its empty store on purpose (tests/integration/test_empty_collection.py tests it)
    pytest.mark.filterwarnings("ignore::shortlist.errors.EmptyCollectionWarning"),
]


class TestShortlistVectorStoreStandard(VectorStoreIntegrationTests):
    """The suite's own tests, on a real in-memory Chroma collection and shortlist's real encoder.

    The suite's default embedding (a 6-dimension fake) cannot be used: the collection records its model, so the store
    embeds with shortlist's encoder; the suite's assertions hold with it (each query equals one stored text).
    """

    @pytest.fixture
    def vectorstore(self, encoder: Encoder) -> Iterator[VectorStore]:
        store = ShortlistVectorStore(embedding_function=MiniLMEmbeddings(encoder=encoder), in_memory=True)
        yield store

    @staticmethod
    def get_embeddings() -> MiniLMEmbeddings:
        return MiniLMEmbeddings()


CORPUS = [
    Document(page_content="Cats sleep for most of the day, up to sixteen hours.", metadata={"topic": "pets"}),
    Document(page_content="Dogs need a long walk every morning.", metadata={"topic": "pets"}),
    Document(page_content="The stock market fell sharply on Monday.", metadata={"topic": "finance"}),
    Document(page_content="Interest rates rose for the third time this year.", metadata={"topic": "finance"}),
    Document(page_content="Photosynthesis turns sunlight into chemical energy.", metadata={"topic": "science"}),
]
IDS = ["cats", "dogs", "stocks", "rates", "photo"]


@pytest.fixture
def store(encoder: Encoder) -> ShortlistVectorStore:
    return ShortlistVectorStore.from_documents(CORPUS, MiniLMEmbeddings(encoder=encoder), ids=IDS, in_memory=True)


def test_scores_are_cosine_and_filter_is_a_chroma_where(store: ShortlistVectorStore, encoder: Encoder) -> None:
    pairs = store.similarity_search_with_score("How long do cats sleep?", k=2, mode="dense")
    assert [d.id for d, _ in pairs] == ["cats", "dogs"]
    expected = float(
        encoder.embed_query("How long do cats sleep?") @ encoder.embed_documents([CORPUS[0].page_content])[0]
    )
    assert pairs[0][1] == pytest.approx(expected, abs=1e-4)
    assert pairs[0][1] > pairs[1][1]
    found = store.similarity_search("How long do cats sleep?", k=3, filter={"topic": "finance"})
    assert {d.id for d in found} == {"stocks", "rates"}
    assert all(d.metadata == {"topic": "finance"} for d in found)
    with pytest.raises(InputError, match="colour"):
        store.similarity_search("cats", filter={"colour": "red"})


def test_search_by_vector_and_mmr(store: ShortlistVectorStore, encoder: Encoder) -> None:
    vec = encoder.embed_query("falling share prices").tolist()
    assert store.similarity_search_by_vector(vec, k=1)[0].id == "stocks"
    plain = store.similarity_search("pets: cats and dogs", k=2, mode="dense")
    diverse = store.max_marginal_relevance_search("pets: cats and dogs", k=2, fetch_k=5, lambda_mult=0.0)
    assert {d.id for d in plain} == {"cats", "dogs"}
    assert len(diverse) == 2 and {d.id for d in diverse} != {"cats", "dogs"}  # pure diversity leaves the pets pair
    by_vec = store.max_marginal_relevance_search_by_vector(vec, k=2, fetch_k=5, lambda_mult=1.0)
    assert by_vec[0].id == "stocks"


def test_retriever_search_kwargs_reach_the_prefilter(store: ShortlistVectorStore) -> None:
    # keyword mode: only texts with the word match (a dense search would return k documents whatever they say)
    keyword = store.as_retriever(search_kwargs={"k": 4, "mode": "keyword"}).invoke("photosynthesis")
    assert [d.id for d in keyword] == ["photo"]
    strict = store.as_retriever(search_kwargs={"k": 5, "min_score": 0.4, "mode": "dense"}).invoke("cats sleeping")
    assert [d.id for d in strict] == ["cats"]
    tokens = store.prefilter.encoder.count_tokens(CORPUS[0].page_content)
    budgeted = store.as_retriever(search_kwargs={"k": 5, "budget": tokens}).invoke("How long do cats sleep?")
    assert [d.id for d in budgeted] == ["cats"]
    threshold = store.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.4})
    assert [d.id for d in threshold.invoke("cats sleeping")] == ["cats"]  # relevance = cosine
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 5}).invoke("money")
    assert len(mmr) == 2
    with pytest.raises(ConfigError, match="Unknown search option"):
        store.as_retriever(search_kwargs={"top_k": 2}).invoke("cats")
    assert store.shortlist("How long do cats sleep?", k=2).stats.saved_share > 0


async def test_async_retriever_and_search(store: ShortlistVectorStore) -> None:
    docs = await store.as_retriever(search_kwargs={"k": 1, "mode": "dense"}).ainvoke("sleepy cats")
    assert [d.id for d in docs] == ["cats"]
    both = await asyncio.gather(store.asimilarity_search("stocks", k=1), store.asimilarity_search("dogs", k=1))
    assert [b[0].id for b in both] == ["stocks", "dogs"]


def test_from_prefilter_sees_chunks_the_prefilter_ingested(encoder: Encoder) -> None:
    pf = Prefilter.in_memory("vs-pf", encoder=encoder)
    pf.add_documents(
        [{"id": "guide", "text": "Water the tomato plants every evening.", "metadata": {"title": "Garden"}}]
    )
    store = ShortlistVectorStore.from_prefilter(pf, mode="dense")
    doc = store.similarity_search("when to water tomatoes", k=1)[0]
    assert doc.metadata["source"] == "guide" and doc.metadata["chunk"] == 0 and doc.metadata["title"] == "Garden"
    # and rows the store writes are what the pre-filter searches, with the loader's source as the document id
    store.add_texts(["Tomatoes need full sun."], [{"source": "guide.txt"}], ids=["sun"])
    hits = pf.search("tomato sun", k=2, mode="dense")
    assert "sun" in {h.id for h in hits}
    assert store.get_by_ids(["sun"])[0].metadata == {"source": "guide.txt"}
    assert pf.delete("guide.txt") == 1 and store.get_by_ids(["sun"]) == []


def test_overwrite_replaces_text_metadata_and_keyword_index(store: ShortlistVectorStore) -> None:
    assert [d.id for d in store.similarity_search("photosynthesis", k=3, mode="keyword")] == ["photo"]
    store.add_texts(["Mitochondria are the powerhouse of the cell."], [{"kingdom": "cell"}], ids=["photo"])
    got = store.get_by_ids(["photo"])[0]
    assert got.page_content.startswith("Mitochondria") and got.metadata == {"kingdom": "cell"}  # no stale 'topic'
    assert store.similarity_search("photosynthesis", k=3, mode="keyword") == []
    assert [d.id for d in store.similarity_search("mitochondria", k=3, mode="keyword")] == ["photo"]
    assert store.prefilter.count() == len(IDS)


def test_metadata_round_trips_exactly(store: ShortlistVectorStore) -> None:
    meta = {"source": 7, "chunk": "intro", "tags": ["a", "b"], "nested": {"x": None}}
    store.add_documents([Document(page_content="A note with odd metadata.", metadata=meta)], ids=["odd"])
    assert store.get_by_ids(["odd"])[0].metadata == meta
    [generated] = store.add_texts(["No id given here."])
    assert len(generated) == 36 and store.get_by_ids([generated])[0].metadata == {}


def test_bad_input_is_refused_and_writes_nothing(store: ShortlistVectorStore) -> None:
    before = store.prefilter.count()
    with pytest.raises(InputError, match=r"texts\[1\]"):
        store.add_texts(["fine", "   "])
    with pytest.raises(InputError, match="cannot store"):
        store.add_texts(["fine"], [{"when": object()}])
    with pytest.raises(ConfigError, match="metadatas has 1"):
        store.add_texts(["a", "b"], [{}])
    with pytest.raises(InputError, match="nothing was deleted"):
        store.delete()
    assert store.prefilter.count() == before
    assert store.delete(filter={"topic": "finance"}) is True
    assert store.prefilter.count() == before - 2
    with pytest.raises(ConfigError, match="MiniLMEmbeddings"):
        ShortlistVectorStore(embedding_function=DeterministicFakeEmbedding(size=6), in_memory=True)
    with pytest.raises(ConfigError, match="not both"):
        ShortlistVectorStore(prefilter=store.prefilter, persist_directory="x")
    with pytest.raises(ConfigError, match="mode must be one of 'dense', 'keyword', 'hybrid', got 'vector'"):
        ShortlistVectorStore.from_prefilter(store.prefilter, mode="vector")


def test_persist_directory_reopens(tmp_path: Path, encoder: Encoder) -> None:
    emb = MiniLMEmbeddings(encoder=encoder)
    ShortlistVectorStore.from_texts(["Paris is the capital of France."], emb, ids=["paris"], persist_directory=tmp_path)
    again = ShortlistVectorStore(embedding_function=emb, persist_directory=tmp_path)
    assert [d.id for d in again.similarity_search("capital of France", k=1)] == ["paris"]
    assert again.embeddings.embed_query("x") == emb.embed_query("x")
