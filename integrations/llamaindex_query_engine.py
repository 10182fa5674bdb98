"""A LlamaIndex RetrieverQueryEngine over the shortlist pre-filter.

    python integrations/llamaindex_query_engine.py "How do I write my own context manager?"
    python integrations/llamaindex_query_engine.py --slice "How do I read rows from a CSV file?"  # nothing built first
    python integrations/llamaindex_query_engine.py --llm ollama --model llama3.2 "..."          # a real model

By default it searches the `python-docs` collection that `make demo` builds and answers with LlamaIndex's offline
MockLLM (which echoes its prompt: you see exactly what a model would read). With --llm ollama
(pip install llama-index-llms-ollama) or --llm openai-like (pip install llama-index-llms-openai-like; any
OpenAI-compatible server via --base-url) a real model answers.
"""

from __future__ import annotations

import argparse
import sys

from _common import add_source_args, open_prefilter
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

from shortlist.llama_index import ShortlistRetriever


def make_llm(args: argparse.Namespace) -> LLM:
    if args.llm == "mock":
        return MockLLM()
    if args.llm == "ollama":
        try:
            from llama_index.llms.ollama import Ollama
        except ImportError:
            sys.exit("error: --llm ollama needs `pip install llama-index-llms-ollama`")
        return Ollama(
            model=args.model or "llama3.2", base_url=args.base_url or "http://localhost:11434", request_timeout=120
        )
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError:
        sys.exit("error: --llm openai-like needs `pip install llama-index-llms-openai-like`")
    return OpenAILike(model=args.model or "my-model", api_base=args.base_url, api_key="-", is_chat_model=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", help="the question to answer")
    add_source_args(parser)
    parser.add_argument("-k", type=int, default=3, help="nodes in the shortlist (default 3)")
    parser.add_argument("--min-score", type=float, default=None, help="cosine threshold (default: none)")
    parser.add_argument("--mode", choices=["dense", "keyword", "hybrid"], default="hybrid", help="default: hybrid")
    parser.add_argument("--llm", choices=["mock", "ollama", "openai-like"], default="mock", help="default: mock")
    parser.add_argument("--model", help="model name for --llm ollama/openai-like")
    parser.add_argument("--base-url", help="server URL for --llm ollama/openai-like")
    args = parser.parse_args(argv)

    pf = open_prefilter(args)
    retriever = ShortlistRetriever(pf, similarity_top_k=args.k, min_score=args.min_score, mode=args.mode)
    engine = RetrieverQueryEngine.from_args(retriever, llm=make_llm(args))
    response = engine.query(args.question)
    print(f"sources for {args.question!r}:")
    for node in response.source_nodes:
        print(f"  {node.score:.3f}  {node.node.metadata['source']:<28} {node.node.get_content()[:60]!r}")
    stats = retriever.shortlist(args.question).stats
    print(
        f"the LLM read {stats.kept_tokens:,} of {stats.corpus_tokens:,} corpus tokens ({stats.saved_share:.2%} saved)"
    )
    text = str(response)
    print(f"response ({len(text):,} characters):\n{text[:800]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
