"""Which MiniLM signals tell in-scope questions from the others? The top-1 dense signals of issue 16's cases, alone.

    python benchmarks/relevance_signals.py                        # all four cases (~4 min on 2 cores)
    python benchmarks/relevance_signals.py --cases clinc150

``benchmarks/relevance.py`` measures ``Hit.relevance`` through ``Prefilter.search``; this script asks what is left
to gain on the dense side, with the model's vectors alone (numpy, exact neighbours, every document embedded whole,
not chunked: the figures differ a little from the search's). For each case of ``relevance.py`` (the same
documents, in-scope and off-topic questions) it prints the ROC-AUC of one score per question, from its nearest
documents:

    cosine       the top-1 cosine (what ``min_score`` thresholds)
    centred      top-1 minus the mean cosine of the top 40 (the query's own level taken off: CSLS's query term)
    support      top-1 plus half the mean of the 2nd-5th cosines (other documents as close: a FAQ's paraphrases)
    hubness      max over documents of cosine - 0.5 * r(doc), r the mean cosine of the doc to its 10 nearest
                 documents (CSLS's document term, Conneau et al. 2018, with its constants): hubs are discounted
    late         the top-1 document by cosine, scored by token late interaction: the mean over the question's
                 word pieces of their best cosine with the document's (MaxSim recall, as ColBERT/BERTScore)

Each design's constants are the literature's or round numbers fixed before the run; none is fitted here. The
docs (docs/hybrid.md, "What else was tried for CLINC150") say what the figures led to.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relevance import CASES, DEFAULT_DATA, case_groups, roc_auc  # noqa: E402

from shortlist import Encoder  # noqa: E402

Matrix = np.ndarray
SIGNALS = ("cosine", "centred", "support", "hubness", "late")


def case_texts(name: str, data: Path) -> tuple[list[str], list[str], list[str]]:
    """The case's document texts, in-scope and off-topic questions (``benchmarks/relevance.py``'s groups)."""
    source, inside, outside, _ = case_groups(name, data)
    docs = source if isinstance(source, list) else list(source.corpus.values())
    return [d["text"] for d in docs], inside, outside


class TokenVectors:
    """Each text's word-piece vectors (the model's last layer, CLS and SEP left out), L2-normalised."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from shortlist.model import resolve_model

        source = resolve_model()
        self.model = SentenceTransformer(str(source.path or source.name), device="cpu")

    def __call__(self, texts: Sequence[str]) -> list[Matrix]:
        out = self.model.encode(list(texts), output_value="token_embeddings", batch_size=64)
        vectors = []
        for t in out:
            e = t.numpy()[1:-1]
            vectors.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12))
        return vectors


def scores(
    queries: Matrix, docs: Matrix, hub: Matrix, q_tokens: list[Matrix], d_tokens: list[Matrix]
) -> dict[str, Matrix]:
    """Each signal's score per question."""
    sims = queries @ docs.T
    ordered = -np.sort(-sims, axis=1)
    best = sims.argmax(axis=1)
    late = np.array([float((q_tokens[i] @ d_tokens[j].T).max(axis=1).mean()) for i, j in enumerate(best)])
    return {
        "cosine": ordered[:, 0],
        "centred": ordered[:, 0] - ordered[:, :40].mean(axis=1),
        "support": ordered[:, 0] + 0.5 * ordered[:, 1:5].mean(axis=1),
        "hubness": (sims - 0.5 * hub[None, :]).max(axis=1),
        "late": late,
    }


def run_case(name: str, data: Path, encoder: Encoder, tokens: Callable[[Sequence[str]], list[Matrix]]) -> dict:
    docs, inside, outside = case_texts(name, data)
    dv = encoder.embed_documents(docs)
    between = dv @ dv.T
    np.fill_diagonal(between, -np.inf)
    hub = -np.sort(-between, axis=1)[:, :10].mean(axis=1)
    d_tokens = tokens(docs)
    got = {
        group: scores(encoder.embed_documents(qs), dv, hub, tokens(qs), d_tokens)
        for group, qs in (("in", inside), ("out", outside))
    }
    row = {s: roc_auc(got["in"][s], got["out"][s]) for s in SIGNALS}
    print(
        f"[{name}] {len(docs)} documents, {len(inside)} / {len(outside)} questions: "
        + ", ".join(f"{s} {row[s]:.4f}" for s in SIGNALS),
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    encoder, tokens = Encoder.shared(), TokenVectors()
    rows = {name: run_case(name, args.data, encoder, tokens) for name in args.cases.split(",")}
    print("\n| case | " + " | ".join(SIGNALS) + " |\n|---|" + "---|" * len(SIGNALS))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[s]:.4f}" for s in SIGNALS) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
