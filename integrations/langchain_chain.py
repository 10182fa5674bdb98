"""Pre-filtered RAG with LangChain: an LCEL chain whose retriever is the shortlist pre-filter.

    python integrations/langchain_chain.py "How do I catch several exceptions in one except clause?"
    python integrations/langchain_chain.py --slice "How do I read rows from a CSV file?"   # nothing built first
    python integrations/langchain_chain.py --llm ollama --model llama3.2 "..."            # a real model

By default it searches the `python-docs` collection that `make demo` builds and answers with LangChain's offline
fake chat model, printing the shortlist, the prompt's size against the whole corpus, and the answer. With
--llm ollama (pip install langchain-ollama) or --llm openai (pip install langchain-openai; any OpenAI-compatible
server via --base-url) a real model answers.
"""

from __future__ import annotations

import argparse
import sys

from _common import add_source_args, open_prefilter
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from shortlist.langchain import ShortlistRetriever

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from the context only. If it does not hold the answer, say so.\n\nContext:\n{context}"),
        ("human", "{question}"),
    ]
)


def make_llm(args: argparse.Namespace) -> BaseChatModel:
    if args.llm == "fake":
        return FakeListChatModel(responses=["(offline fake model) I would answer from the context above."])
    if args.llm == "ollama":
        try:
            from langchain_ollama import ChatOllama
        except ImportError:
            sys.exit("error: --llm ollama needs `pip install langchain-ollama`")
        return ChatOllama(model=args.model or "llama3.2", base_url=args.base_url or "http://localhost:11434")
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        sys.exit("error: --llm openai needs `pip install langchain-openai`")
    return ChatOpenAI(model=args.model or "gpt-4o-mini", base_url=args.base_url)


def format_docs(documents: list) -> str:
    return "\n\n".join(f"[{d.metadata['source']}] {d.page_content}" for d in documents)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", help="the question to answer")
    add_source_args(parser)
    parser.add_argument("-k", type=int, default=3, help="chunks in the shortlist (default 3)")
    parser.add_argument("--min-score", type=float, default=0.25, help="cosine threshold (default 0.25)")
    parser.add_argument("--mode", choices=["dense", "keyword", "hybrid"], default="hybrid", help="default: hybrid")
    parser.add_argument("--llm", choices=["fake", "ollama", "openai"], default="fake", help="default: fake (offline)")
    parser.add_argument("--model", help="model name for --llm ollama/openai")
    parser.add_argument("--base-url", help="server URL for --llm ollama/openai")
    args = parser.parse_args(argv)

    pf = open_prefilter(args)
    retriever = ShortlistRetriever.from_prefilter(pf, k=args.k, min_score=args.min_score, mode=args.mode)
    docs = retriever.invoke(args.question)
    print(f"shortlist for {args.question!r}:")
    for d in docs:
        print(f"  {d.metadata['rank']}. {d.metadata['score']:.3f}  {d.metadata['source']:<28} {d.page_content[:60]!r}")
    if not docs:
        print("  (nothing relevant: no LLM call made)")
        return 0

    context = format_docs(docs)
    prompt_tokens = len(
        pf.encoder.tokenizer.encode(PROMPT.invoke({"context": context, "question": args.question}).to_string()).ids
    )
    corpus = pf.corpus_tokens()
    print(
        f"prompt: {prompt_tokens:,} tokens with the pre-filter; the whole corpus would be {corpus:,} tokens "
        f"({1 - prompt_tokens / corpus:.2%} saved)"
    )

    chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | PROMPT | make_llm(args)
    chain = chain | StrOutputParser()
    print(f"answer: {chain.invoke(args.question)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
