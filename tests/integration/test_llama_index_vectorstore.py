"""ShortlistVectorStore (LlamaIndex): VectorStoreIndex over shortlist's collection, with LlamaIndex's own classes."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from shortlist import Encoder, Prefilter
from shortlist.errors import ConfigError, EmbeddingModelMismatchError, InputError
from shortlist.llama_index import MiniLMEmbedding, ShortlistVectorStore

pytestmark = pytest.mark.filterwarnings("ignore::shortlist.errors.EmptyCollectionWarning")

DOCS = [
    Document(text="Cats sleep for most of the day, up to sixteen hours.", id_="cats", metadata={"topic": "pets"}),
    Document(text="Dogs need a long walk every morning.", id_="dogs", metadata={"topic": "pets"}),
    Document(
        text="The stock market fell sharply on Monday.", id_="stocks", metadata={"topic": "finance", "year": 2024}
    ),
    Document(text="Interest rates rose for the third time.", id_="rates", metadata={"topic": "finance", "year": 2023}),
    Document(text="Photosynthesis turns sunlight into chemical energy.", id_="photo", metadata={"topic": "science"}),
]


@pytest.fixture
def embed(encoder: Encoder) -> MiniLMEmbedding:
    return MiniLMEmbedding(encoder=encoder)


@pytest.fixture
def index(encoder: Encoder, embed: MiniLMEmbedding) -> VectorStoreIndex:
    store = ShortlistVectorStore(in_memory=True, encoder=encoder)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    for doc in DOCS:
        index.insert(doc)
    return index


def _store(index: VectorStoreIndex) -> ShortlistVectorStore:
    store = index.vector_store
    assert isinstance(store, ShortlistVectorStore)
    return store


def test_insert_writes_to_the_collection_and_retrieve_reads_it(index: VectorStoreIndex, encoder: Encoder) -> None:
    store = _store(index)
    assert store.stores_text and store.prefilter.count() == len(DOCS)
    nodes = index.as_retriever(similarity_top_k=2).retrieve("How long do cats sleep?")
    assert [n.node.ref_doc_id for n in nodes] == ["cats", "dogs"]
    assert nodes[0].node.metadata == {"topic": "pets"}
    assert nodes[0].node.get_content().startswith("Cats sleep")
    assert nodes[0].score is not None and 0.3 < nodes[0].score <= 1.0 and nodes[0].score > (nodes[1].score or 0)
    # the rows are the pre-filter's too: the same collection, searched by shortlist directly
    hits = store.prefilter.search("How long do cats sleep?", k=1, mode="dense")
    assert hits[0].id == nodes[0].node.node_id and hits[0].score == pytest.approx(nodes[0].score, abs=1e-4)


def test_query_modes(index: VectorStoreIndex) -> None:
    hybrid = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=2).retrieve("photosynthesis")
    assert hybrid[0].node.ref_doc_id == "photo"
    keyword = index.as_retriever(vector_store_query_mode="text_search", similarity_top_k=4).retrieve("photosynthesis")
    assert [n.node.ref_doc_id for n in keyword] == ["photo"]  # BM25: only the text with the word
    dense = index.as_retriever(similarity_top_k=2).retrieve("pets: cats and dogs")
    mmr = index.as_retriever(
        vector_store_query_mode="mmr", similarity_top_k=2, vector_store_kwargs={"mmr_threshold": 0.0}
    ).retrieve("pets: cats and dogs")
    assert {n.node.ref_doc_id for n in dense} == {"cats", "dogs"}
    assert len(mmr) == 2 and {n.node.ref_doc_id for n in mmr} != {"cats", "dogs"}
    strict = index.as_retriever(similarity_top_k=5, vector_store_kwargs={"min_score": 0.4}).retrieve("cats sleeping")
    assert [n.node.ref_doc_id for n in strict] == ["cats"]
    with pytest.raises(ConfigError, match="not supported"):
        index.as_retriever(vector_store_query_mode="svm").retrieve("cats")
    with pytest.raises(ConfigError, match="Unknown vector_store_kwargs"):
        index.as_retriever(vector_store_kwargs={"top_k": 1}).retrieve("cats")


@pytest.mark.asyncio
async def test_async_retrieve_insert_and_delete(index: VectorStoreIndex) -> None:
    store = _store(index)
    nodes = await index.as_retriever(similarity_top_k=1).aretrieve("How long do cats sleep?")
    assert [n.node.ref_doc_id for n in nodes] == ["cats"]
    await index.ainsert(Document(text="Owls hunt at night.", id_="owls"))
    assert store.prefilter.count() == len(DOCS) + 1
    await index.adelete_ref_doc("owls")
    assert store.prefilter.count() == len(DOCS)


def test_metadata_filters(index: VectorStoreIndex) -> None:
    finance = MetadataFilters(filters=[MetadataFilter(key="topic", value="finance")])
    got = index.as_retriever(similarity_top_k=5, filters=finance).retrieve("cats")
    assert {n.node.ref_doc_id for n in got} == {"stocks", "rates"}
    recent = MetadataFilters(
        filters=[
            MetadataFilter(key="topic", value="finance"),
            MetadataFilter(key="year", value=2024, operator=FilterOperator.GTE),
        ]
    )
    assert [n.node.ref_doc_id for n in index.as_retriever(filters=recent).retrieve("money")] == ["stocks"]
    either = MetadataFilters(
        filters=[MetadataFilter(key="topic", value="science"), MetadataFilter(key="year", value=2023)],
        condition=FilterCondition.OR,
    )
    got = index.as_retriever(similarity_top_k=5, filters=either).retrieve("anything")
    assert {n.node.ref_doc_id for n in got} == {"photo", "rates"}
    store = _store(index)
    assert {n.ref_doc_id for n in store.get_nodes(filters=finance)} == {"stocks", "rates"}
    bad = MetadataFilters(filters=[MetadataFilter(key="topic", value="fin", operator=FilterOperator.TEXT_MATCH)])
    with pytest.raises(ConfigError, match="text_match"):
        index.as_retriever(filters=bad).retrieve("x")


def test_delete_ref_doc_and_nodes(index: VectorStoreIndex) -> None:
    store = _store(index)
    index.delete_ref_doc("cats")
    assert store.prefilter.count() == len(DOCS) - 1
    assert "cats" not in {n.node.ref_doc_id for n in index.as_retriever(similarity_top_k=5).retrieve("cats")}
    dog = store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="topic", value="pets")]))
    assert [n.ref_doc_id for n in dog] == ["dogs"]
    store.delete_nodes([dog[0].node_id])
    assert store.prefilter.count() == len(DOCS) - 2
    store.clear()
    assert store.prefilter.count() == 0


def test_reinsert_replaces_and_query_engine_runs_without_llm(index: VectorStoreIndex) -> None:
    index.insert(Document(text="Cats purr when they are content.", id_="cats", metadata={"mood": "happy"}))
    store = _store(index)
    [node] = [n for n in store.get_nodes() if n.ref_doc_id == "cats" and "purr" in n.get_content()]
    assert node.metadata == {"mood": "happy"}
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    response = engine.query("Do cats purr?")
    assert [n.node.ref_doc_id for n in response.source_nodes] == ["cats"]
    assert "purr" in response.source_nodes[0].node.get_content()


def test_from_prefilter_and_persist_dir(tmp_path: Path, encoder: Encoder, embed: MiniLMEmbedding) -> None:
    pf = Prefilter.in_memory("li-pf", encoder=encoder)
    pf.add_documents(
        [{"id": "guide", "text": "Water the tomato plants every evening.", "metadata": {"title": "Garden"}}]
    )
    index = VectorStoreIndex.from_vector_store(ShortlistVectorStore.from_prefilter(pf), embed_model=embed)
    node = index.as_retriever(similarity_top_k=1).retrieve("when to water tomatoes")[0].node
    assert node.ref_doc_id == "guide" and node.metadata["title"] == "Garden" and node.metadata["chunk"] == 0
    # VectorStoreIndex.from_documents over a persisted store, then a new process-like reopen
    store = ShortlistVectorStore("li-disk", persist_dir=tmp_path, encoder=encoder)
    ctx = StorageContext.from_defaults(vector_store=store)
    VectorStoreIndex.from_documents(DOCS[:2], storage_context=ctx, embed_model=embed)
    again = ShortlistVectorStore("li-disk", persist_dir=tmp_path, encoder=encoder)
    found = VectorStoreIndex.from_vector_store(again, embed_model=embed).as_retriever(similarity_top_k=1)
    assert found.retrieve("walking the dog")[0].node.ref_doc_id == "dogs"


def test_bad_input(encoder: Encoder, embed: MiniLMEmbedding) -> None:
    store = ShortlistVectorStore(in_memory=True, encoder=encoder)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    with pytest.raises(InputError, match="cannot store"):
        index.insert(Document(text="Some text.", metadata={"when": object()}))
    assert store.prefilter.count() == 0
    from llama_index.core.schema import TextNode

    with pytest.raises(EmbeddingModelMismatchError):
        store.add([TextNode(text="x", embedding=[0.1] * 8)])
    with pytest.raises(ConfigError, match="not both"):
        ShortlistVectorStore(prefilter=store.prefilter, in_memory=True)
    Settings.llm = None  # type: ignore[assignment]  # no LLM anywhere in these tests
