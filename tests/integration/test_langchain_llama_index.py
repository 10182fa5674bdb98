"""Both frameworks in one process: one model load, identical vectors, identical scores and metadata."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from shortlist import Encoder, Prefilter
from shortlist.langchain import MiniLMEmbeddings
from shortlist.langchain import ShortlistRetriever as LangChainRetriever
from shortlist.llama_index import MiniLMEmbedding
from shortlist.llama_index import ShortlistRetriever as LlamaIndexRetriever

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DOCS = [
    {"id": "cats", "text": "Cats sleep twelve to sixteen hours a day.", "metadata": {"topic": "pets", "year": 2021}},
    {"id": "dogs", "text": "Dogs need daily walks and enjoy playing fetch.", "metadata": {"topic": "pets"}},
    {"id": "stocks", "text": "The stock market fell on Monday after weak earnings.", "metadata": {"topic": "finance"}},
    {"id": "plants", "text": "Plants make sugar from sunlight by photosynthesis.", "metadata": {"topic": "science"}},
    {"id": "lists", "text": "Python lists are mutable; tuples are not.", "metadata": {"topic": "code", "tags": ["py"]}},
]


def test_one_model_load_and_identical_vectors_in_a_fresh_process() -> None:
    script = textwrap.dedent(
        """
        import json
        from shortlist import Prefilter
        from shortlist.encoder import loaded_models
        from shortlist.langchain import MiniLMEmbeddings, ShortlistRetriever as LCRetriever
        from shortlist.llama_index import MiniLMEmbedding, ShortlistRetriever as LIRetriever

        lc, li = MiniLMEmbeddings(), MiniLMEmbedding()
        pf = Prefilter.in_memory("once")
        pf.add_documents(["Cats sleep most of the day.", "Stocks fell on Monday.", "Plants need light."])
        lc_docs = LCRetriever.from_prefilter(pf, k=2).invoke("Do cats sleep a lot?")
        li_nodes = LIRetriever.from_prefilter(pf, similarity_top_k=2).retrieve("Do cats sleep a lot?")
        texts = ["The cat sits on the mat.", "Stock markets fell today."]
        print(json.dumps({
            "loads": loaded_models(),
            "same_encoder": lc.encoder is li.encoder is pf.encoder,
            "query_equal": lc.embed_query(texts[0]) == li.get_query_embedding(texts[0]),
            "documents_equal": lc.embed_documents(texts) == li.get_text_embedding_batch(texts),
            "text_equal": lc.embed_documents(texts[:1])[0] == li.get_text_embedding(texts[0]),
            "dimension": len(lc.embed_query(texts[0])),
            "lc_scores": [d.metadata["score"] for d in lc_docs],
            "li_scores": [n.score for n in li_nodes],
        }))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["loads"]) == 1, result["loads"]  # both adapters, both retrievers, the pre-filter: one load
    assert result["same_encoder"] is True
    assert result["query_equal"] is True and result["documents_equal"] is True and result["text_equal"] is True
    assert result["dimension"] == 384
    assert result["lc_scores"] == result["li_scores"] and len(result["lc_scores"]) == 2


def test_both_embedding_adapters_share_the_encoder_and_agree(encoder: Encoder) -> None:
    lc, li = MiniLMEmbeddings(), MiniLMEmbedding()
    assert lc.encoder is li.encoder is encoder
    texts = [d["text"] for d in DOCS]
    assert lc.embed_documents(texts) == li.get_text_embedding_batch(texts)
    assert lc.embed_query("Do cats sleep a lot?") == li.get_query_embedding("Do cats sleep a lot?")


@pytest.fixture(scope="module")
def pf() -> Prefilter:
    p = Prefilter.in_memory("both-frameworks", encoder=Encoder.shared())
    p.add_documents(DOCS)
    return p


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"mode": "hybrid"},
        {"mmr": True, "mmr_lambda": 0.3},
        {"where": {"topic": "pets"}},
        {"min_score": 0.2},
    ],
    ids=["dense", "hybrid", "mmr", "where", "min_score"],
)
def test_scores_and_metadata_are_identical_across_frameworks(pf: Prefilter, encoder: Encoder, options: dict) -> None:
    question = "Which animal sleeps most of the day?"
    docs = LangChainRetriever.from_prefilter(pf, k=3, **options).invoke(question)
    nodes = LlamaIndexRetriever.from_prefilter(pf, similarity_top_k=3, **options).retrieve(question)
    assert docs, options
    assert [d.id for d in docs] == [n.node.node_id for n in nodes]
    assert [d.page_content for d in docs] == [n.node.get_content() for n in nodes]
    assert [d.metadata["score"] for d in docs] == [n.score for n in nodes]
    assert [d.metadata for d in docs] == [n.node.metadata for n in nodes]
    query = encoder.embed_query(question)
    for d in docs:  # the scores are cosine similarities, whatever the ordering
        cosine = float(encoder.embed_documents([d.page_content])[0] @ query)
        assert d.metadata["score"] == pytest.approx(cosine, abs=1e-4)
    assert docs[0].metadata["source"] == "cats"
    assert docs[0].metadata["year"] == 2021
