"""ShortlistRetriever (LangChain) over a real Prefilter: the standard suite, metadata and scores, an LCEL chain."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import ValidationError

from shortlist import Encoder, Prefilter
from shortlist.errors import ConfigError
from shortlist.langchain import ShortlistRetriever

# The standard suite's async test is a plain `async def` method: run it on pytest-asyncio's loop (module-wide mark;
# a no-op on the sync tests).
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .* is marked with '@pytest.mark.asyncio':pytest.PytestWarning"
    ),
]

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
QUESTION = "How many hours a day do cats sleep?"


@functools.cache
def corpus_prefilter() -> Prefilter:
    """One in-memory pre-filter over CORPUS for the module (the standard suite's properties cannot take fixtures)."""
    pf = Prefilter.in_memory("langchain-retriever", encoder=Encoder.shared())
    pf.add_documents([{"id": i, "text": t, "metadata": {"topic": topic}} for i, topic, t in CORPUS])
    return pf


@pytest.fixture
def pf(encoder: Encoder) -> Prefilter:
    return corpus_prefilter()


class TestShortlistRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return ShortlistRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"prefilter": corpus_prefilter(), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "Which animals make good pets?"


def test_documents_are_the_shortlist_with_id_score_and_rank(pf: Prefilter, encoder: Encoder) -> None:
    retriever = ShortlistRetriever(prefilter=pf, k=3)
    docs = retriever.invoke(QUESTION)
    hits = pf.search(QUESTION, k=3).hits
    assert [d.page_content for d in docs] == [h.text for h in hits]
    assert docs[0].page_content == TEXT["cats"]
    query = encoder.embed_query(QUESTION)
    for rank, (doc, hit) in enumerate(zip(docs, hits, strict=True), start=1):
        assert isinstance(doc, Document)
        assert doc.id == doc.metadata["id"] == hit.id
        assert doc.metadata["rank"] == rank
        assert doc.metadata["score"] == hit.score
        # The score is the cosine similarity of the question and the chunk.
        assert doc.metadata["score"] == pytest.approx(
            float(encoder.embed_documents([doc.page_content])[0] @ query), abs=1e-4
        )
        assert doc.metadata["source"] in TEXT and doc.metadata["chunk"] == 0
        assert doc.metadata["topic"] == next(topic for i, topic, _ in CORPUS if i == doc.metadata["source"])
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_from_prefilter_is_the_constructor(pf: Prefilter) -> None:
    a = ShortlistRetriever.from_prefilter(pf, k=2, where={"topic": "finance"})
    b = ShortlistRetriever(prefilter=pf, k=2, where={"topic": "finance"})
    assert a.prefilter is pf and a.k == 2
    assert [d.id for d in a.invoke("markets")] == [d.id for d in b.invoke("markets")]


def test_search_options_as_fields_and_per_call(pf: Prefilter) -> None:
    retriever = ShortlistRetriever(prefilter=pf, k=4, where={"topic": "finance"})
    docs = retriever.invoke("What happened to prices?")
    assert {d.metadata["topic"] for d in docs} == {"finance"} and len(docs) == 2
    # Per-call options override the fields for that call only.
    assert {d.metadata["topic"] for d in retriever.invoke("animals", where={"topic": "pets"})} == {"pets"}
    assert len(retriever.invoke("What happened to prices?")) == 2
    # min_score as a field: an off-topic question gets nothing rather than noise.
    strict = ShortlistRetriever(prefilter=pf, k=4, min_score=0.5)
    assert strict.invoke("quantum chromodynamics lattice gauge theory") == []
    assert [d.page_content for d in strict.invoke(QUESTION)] == [TEXT["cats"]]
    # Other modes and options reach the pre-filter unchanged.
    hybrid = retriever.invoke(QUESTION, mode="hybrid", where=None, k=2)
    assert [d.id for d in hybrid] == [h.id for h in pf.search(QUESTION, k=2, mode="hybrid").hits]
    assert retriever.invoke(QUESTION, where=None, budget=0) == []


def test_bad_options_are_refused(pf: Prefilter) -> None:
    retriever = ShortlistRetriever(prefilter=pf)
    with pytest.raises(ConfigError, match="Unknown search option 'top_k'.*k, min_score"):
        retriever.invoke(QUESTION, top_k=2)
    with pytest.raises(ConfigError, match="k must be a positive int"):
        retriever.invoke(QUESTION, k=0)
    with pytest.raises(ConfigError, match="mode must be one of"):
        retriever.invoke(QUESTION, mode="semantic")
    with pytest.raises(ValidationError):
        ShortlistRetriever(prefilter=pf, k=0)
    with pytest.raises(ValidationError):
        ShortlistRetriever(prefilter=pf, search_kwargs={"k": 2})  # a VectorStoreRetriever habit: named options here
    with pytest.raises(ValidationError):
        ShortlistRetriever(prefilter="not a prefilter")  # type: ignore[arg-type]


def test_user_metadata_named_like_a_result_key_is_kept(encoder: Encoder) -> None:
    pf = Prefilter.in_memory("langchain-keys", encoder=encoder)
    pf.add_documents(
        [{"id": "review", "text": "A quiet hotel near the station.", "metadata": {"score": 5, "rank": "A"}}]
    )
    (doc,) = ShortlistRetriever(prefilter=pf, k=1).invoke("hotel near the station")
    assert doc.metadata["original_score"] == 5 and doc.metadata["original_rank"] == "A"
    assert doc.metadata["rank"] == 1 and -1.0 <= doc.metadata["score"] <= 1.0 and doc.metadata["score"] > 0.5


async def test_async_invoke_matches_sync_and_does_not_block(pf: Prefilter) -> None:
    retriever = ShortlistRetriever(prefilter=pf, k=2)
    docs = await retriever.ainvoke(QUESTION, k=3)
    assert [d.id for d in docs] == [d.id for d in retriever.invoke(QUESTION, k=3)]
    # A long, new question (not in the query cache): the search takes a while in its worker thread.
    long_question = " ".join(f"Do cats nap {i} times a day or sleep through the night?" for i in range(15))
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    docs = await retriever.ainvoke(long_question)
    seen = ticks
    stop.set()
    await task
    assert seen >= 1 and docs[0].page_content == TEXT["cats"]


# ---------------------------------------------------------------------------------------------- LCEL, end to end
class PromptCapture(BaseCallbackHandler):
    """Records the messages every chat model in the run receives."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any) -> None:
        self.prompts.extend(messages)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(doc.page_content for doc in docs)


PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Answer from this context only.\n\nContext:\n{context}"), ("human", "{question}")]
)


def _prompt_text(capture: PromptCapture) -> str:
    assert len(capture.prompts) == 1
    return "\n".join(str(m.content) for m in capture.prompts[0])


@pytest.mark.parametrize("run", ["sync", "async"])
async def test_lcel_chain_sends_the_shortlist_to_the_llm(pf: Prefilter, run: str) -> None:
    retriever = ShortlistRetriever.from_prefilter(pf, k=2)
    llm = FakeListChatModel(responses=["Twelve to sixteen hours."])
    chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()
    capture = PromptCapture()
    config = {"callbacks": [capture]}
    answer = chain.invoke(QUESTION, config=config) if run == "sync" else await chain.ainvoke(QUESTION, config=config)

    assert answer == "Twelve to sixteen hours."
    prompt = _prompt_text(capture)
    shortlisted = [d.page_content for d in retriever.invoke(QUESTION)]
    assert shortlisted[0] == TEXT["cats"] and len(shortlisted) == 2
    for text in shortlisted:
        assert text in prompt
    for text in set(TEXT.values()) - set(shortlisted):
        assert text not in prompt  # only the shortlist reaches the LLM
    assert QUESTION in prompt
