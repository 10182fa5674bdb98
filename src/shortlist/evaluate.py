"""Evaluation: load BEIR-style data, run a retriever over it, report retrieval and pre-filter figures.

Data layouts read (see ``../shared/data``):

- BEIR (:func:`load_beir`): ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``),
  ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score`` with a header line).
- SQuAD 2.0 as passages (:func:`load_squad2`): ``passages.jsonl``, ``questions.jsonl`` (with ``answerable``),
  ``qrels/test.tsv``; unanswerable questions are kept apart in :attr:`Dataset.unanswerable`.
- StackFAQ (:func:`load_stackfaq`): ``faq_questions.jsonl`` (the canonical questions are the corpus),
  ``queries.jsonl`` (user paraphrases), ``qrels/query_to_faq.tsv``.

Metrics (:func:`evaluate`), per query then averaged: Top-1 accuracy (the first document is relevant), Recall@k
(share of the relevant documents in the top k), MRR@k (1 / rank of the first relevant document within k), nDCG@10
(linear gains from the qrels, as trec_eval and BEIR compute it), and latency p50/p99 of the retriever call.

A retriever is any callable ``(question, depth) -> list of document ids, best first``;
:func:`prefilter_retriever` makes one from a :class:`~shortlist.prefilter.Prefilter` (chunks are mapped to their
documents: a document ranks where its best chunk does).

Example:
    ```python
    from shortlist import Prefilter
    from shortlist.evaluate import evaluate, index_dataset, load_stackfaq, prefilter_retriever

    data = load_stackfaq("../shared/data/stackfaq")
    pf = Prefilter.in_memory("stackfaq")
    index_dataset(pf, data)
    report = evaluate(prefilter_retriever(pf, mode="hybrid"), data)
    print(report.format())
    ```
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.config import DEFAULT_MODE
from shortlist.errors import ConfigError, InputError
from shortlist.ingest.chunking import titled

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from shortlist.prefilter import IngestReport, Prefilter, SearchMode

__all__ = [
    "Dataset",
    "EvalReport",
    "PrefilterReport",
    "Retriever",
    "ThresholdRow",
    "evaluate",
    "index_dataset",
    "load_beir",
    "load_dataset",
    "load_squad2",
    "load_stackfaq",
    "ndcg_at_k",
    "prefilter_report",
    "prefilter_retriever",
    "threshold_report",
]

#: ``(question, depth) -> document ids, best first``.
Retriever = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class Dataset:
    """An evaluation set.

    Attributes:
        name: A short name.
        corpus: Document id -> ``{"title": ..., "text": ...}``.
        queries: Query id -> question, for the queries that have relevant documents.
        qrels: Query id -> {document id: relevance grade > 0}.
        unanswerable: Query id -> question, for questions with no relevant document (SQuAD 2.0).
    """

    name: str
    corpus: Mapping[str, Mapping[str, str]]
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    unanswerable: Mapping[str, str] = field(default_factory=dict)

    def documents(self) -> list[dict[str, Any]]:
        """The corpus as documents for :meth:`Prefilter.add_documents`: title and text joined by a newline."""
        out = []
        for doc_id, doc in self.corpus.items():
            title, text = (doc.get("title") or "").strip(), (doc.get("text") or "").strip()
            joined = titled(title, text) if title and text else (title or text)
            out.append({"id": doc_id, "text": joined, "metadata": {"title": title} if title else {}})
        return out

    def subset(self, n_queries: int, *, seed: int = 0) -> Dataset:
        """The first ``n_queries`` queries (sorted by id, shuffled by ``seed``), with the whole corpus."""
        ids = sorted(self.queries)
        rng = np.random.default_rng(seed)
        rng.shuffle(ids)
        keep = ids[:n_queries]
        return Dataset(
            self.name,
            self.corpus,
            {q: self.queries[q] for q in keep},
            {q: self.qrels[q] for q in keep},
            self.unanswerable,
        )


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        msg = f"{path} does not exist: is this a dataset folder in the expected layout?"
        raise ConfigError(msg)
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    msg = f"{path}:{n} is not valid JSON: {exc}"
                    raise InputError(msg) from exc


def _non_empty(queries: dict[str, str], root: Path) -> dict[str, str]:
    kept = {q: text for q, text in queries.items() if isinstance(text, str) and text.strip()}
    if len(kept) < len(queries):
        logger.warning("%s: %d queries with empty text left out.", root, len(queries) - len(kept))
    return kept


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        msg = f"{path} does not exist: the qrels file (query-id, corpus-id, score) is needed."
        raise ConfigError(msg)
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            grade = int(float(row[2]))
            if grade > 0:
                out.setdefault(row[0], {})[row[1]] = grade
    return out


def load_beir(folder: str | Path, split: str = "test", *, name: str | None = None) -> Dataset:
    """Load a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

    Only queries with at least one relevant document are kept.

    Raises:
        ConfigError: if a file is missing.
    """
    root = Path(folder)
    corpus = {
        str(d["_id"]): {"title": d.get("title") or "", "text": d.get("text") or ""}
        for d in _jsonl(root / "corpus.jsonl")
    }
    qrels = _qrels(root / "qrels" / f"{split}.tsv")
    queries = {str(q["_id"]): q["text"] for q in _jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels}
    queries = _non_empty(queries, root)
    qrels = {q: rel for q, rel in qrels.items() if q in queries}
    return Dataset(name or root.name, corpus, queries, qrels)


def load_squad2(folder: str | Path) -> Dataset:
    """Load SQuAD 2.0 as passage retrieval: answerable questions -> their passage; unanswerable ones kept apart."""
    root = Path(folder)
    corpus = {
        str(d["_id"]): {"title": d.get("title") or "", "text": d["text"]} for d in _jsonl(root / "passages.jsonl")
    }
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    unanswerable: dict[str, str] = {}
    for q in _jsonl(root / "questions.jsonl"):
        if q.get("answerable"):
            queries[str(q["_id"])] = q["text"]
            qrels[str(q["_id"])] = {str(q["passage_id"]): 1}
        else:
            unanswerable[str(q["_id"])] = q["text"]
    queries = _non_empty(queries, root)
    return Dataset(root.name, corpus, queries, {q: qrels[q] for q in queries}, _non_empty(unanswerable, root))


def load_stackfaq(folder: str | Path, *, with_answers: bool = False) -> Dataset:
    """Load StackFAQ: user paraphrases -> the canonical FAQ question (optionally with its first answer)."""
    root = Path(folder)
    corpus: dict[str, dict[str, str]] = {}
    for d in _jsonl(root / "faq_questions.jsonl"):
        answers = d.get("answers") or []
        text = answers[0] if with_answers and answers else ""
        corpus[str(d["_id"])] = {"title": d["question"], "text": text}
    qrels = _qrels(root / "qrels" / "query_to_faq.tsv")
    queries = {str(q["_id"]): q["text"] for q in _jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels}
    queries = _non_empty(queries, root)
    return Dataset(root.name, corpus, queries, {q: r for q, r in qrels.items() if q in queries})


def load_dataset(folder: str | Path) -> Dataset:
    """Load any of the three layouts, recognised by their files.

    Raises:
        ConfigError: if the folder matches none of them.
    """
    root = Path(folder)
    if (root / "passages.jsonl").is_file() and (root / "questions.jsonl").is_file():
        return load_squad2(root)
    if (root / "faq_questions.jsonl").is_file():
        return load_stackfaq(root)
    if (root / "corpus.jsonl").is_file():
        return load_beir(root)
    msg = (
        f"{root} is not a dataset folder shortlist knows: expected corpus.jsonl + queries.jsonl + qrels/test.tsv "
        "(BEIR), passages.jsonl + questions.jsonl (SQuAD 2.0) or faq_questions.jsonl (StackFAQ)."
    )
    raise ConfigError(msg)


# ---------------------------------------------------------------------------------------------- metrics
def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (trec_eval's definition); 0.0 when nothing is relevant."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


@dataclass(frozen=True)
class EvalReport:
    """Averaged figures of one retriever on one dataset.

    Attributes:
        name: What was run (e.g. ``"scifact dense"``).
        queries: Queries evaluated.
        top1: Share of queries whose first document is relevant.
        recall: k -> mean Recall@k.
        mrr: k -> mean MRR@k.
        ndcg10: Mean nDCG@10.
        latency_ms: ``{"p50": ..., "p99": ..., "mean": ...}`` of the retriever call.
    """

    name: str
    queries: int
    top1: float
    recall: Mapping[int, float]
    mrr: Mapping[int, float]
    ndcg10: float
    latency_ms: Mapping[str, float]

    def format(self) -> str:
        """One line of figures."""
        rec = " ".join(f"R@{k}={v:.3f}" for k, v in sorted(self.recall.items()))
        mrr = " ".join(f"MRR@{k}={v:.3f}" for k, v in sorted(self.mrr.items()))
        lat = self.latency_ms
        return (
            f"{self.name}: n={self.queries} nDCG@10={self.ndcg10:.4f} Top1={self.top1:.3f} {rec} {mrr} "
            f"p50={lat['p50']:.1f}ms p99={lat['p99']:.1f}ms"
        )


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0}
    arr = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)), "mean": float(arr.mean())}


def evaluate(
    retriever: Retriever,
    dataset: Dataset,
    *,
    ks: Sequence[int] = (1, 5, 10, 20, 100),
    name: str | None = None,
) -> EvalReport:
    """Run ``retriever`` on every query of ``dataset`` and average the metrics.

    Args:
        retriever: ``(question, depth) -> document ids, best first``; called with ``depth = max(max(ks), 10)``.
        dataset: The evaluation set.
        ks: Cut-offs for Recall@k and MRR@k.
        name: Name of the run in the report (default: the dataset's name).

    Raises:
        ConfigError: if ``ks`` is empty or has a non-positive value, or the dataset has no queries.
    """
    if not ks or any(int(k) < 1 for k in ks):
        msg = f"ks must be positive cut-offs, got {ks!r}."
        raise ConfigError(msg)
    if not dataset.queries:
        msg = f"Dataset {dataset.name!r} has no queries with relevant documents."
        raise ConfigError(msg)
    depth = max(max(ks), 10)
    top1, ndcg, latencies = [], [], []
    recall: dict[int, list[float]] = {k: [] for k in ks}
    mrr: dict[int, list[float]] = {k: [] for k in ks}
    for qid, question in dataset.queries.items():
        relevant = dataset.qrels[qid]
        t = time.perf_counter()
        ranked = list(dict.fromkeys(retriever(question, depth)))
        latencies.append((time.perf_counter() - t) * 1000.0)
        first = next((i for i, doc in enumerate(ranked) if doc in relevant), None)
        top1.append(1.0 if first == 0 else 0.0)
        ndcg.append(ndcg_at_k(ranked, relevant, 10))
        for k in ks:
            recall[k].append(len(set(ranked[:k]) & set(relevant)) / len(relevant))
            mrr[k].append(1.0 / (first + 1) if first is not None and first < k else 0.0)
    return EvalReport(
        name=name or dataset.name,
        queries=len(dataset.queries),
        top1=float(np.mean(top1)),
        recall={k: float(np.mean(v)) for k, v in recall.items()},
        mrr={k: float(np.mean(v)) for k, v in mrr.items()},
        ndcg10=float(np.mean(ndcg)),
        latency_ms=_percentiles(latencies),
    )


# ---------------------------------------------------------------------------------------------- prefilter glue
def index_dataset(
    prefilter: Prefilter,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    progress: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest a dataset's corpus into ``prefilter`` (document ids are the dataset's ids; idempotent)."""
    return prefilter.add_documents(dataset.documents(), batch_size=batch_size, progress=progress)


def prefilter_retriever(
    prefilter: Prefilter,
    *,
    mode: SearchMode = DEFAULT_MODE,
    chunks_per_doc: int = 4,
    **search_options: Any,
) -> Retriever:
    """A document retriever over a pre-filter: search chunks, then rank documents by their best chunk.

    Args:
        prefilter: An indexed pre-filter (see :func:`index_dataset`).
        mode: ``"hybrid"`` (default), ``"dense"`` or ``"keyword"``.
        chunks_per_doc: Chunks drawn per document asked for (``depth * chunks_per_doc`` chunks are searched).
        **search_options: Passed to :meth:`Prefilter.search` (``where``, ``mmr``, ...).
    """

    def retrieve(question: str, depth: int) -> list[str]:
        result = prefilter.search(question, k=depth * chunks_per_doc, mode=mode, **search_options)
        return list(dict.fromkeys(str(hit.metadata.get("source")) for hit in result.hits))[:depth]

    return retrieve


@dataclass(frozen=True)
class PrefilterReport:
    """What a shortlist of k chunks keeps, at several k.

    Attributes:
        name: What was run.
        queries: Questions asked.
        chunks: Chunks in the collection.
        corpus_tokens: Word pieces in the collection.
        gold_in_shortlist: k -> share of questions whose gold document has a chunk among the k hits.
        tokens_sent: k -> mean share of the corpus's tokens in the k hits (what the LLM would read).
        top_scores: The cosine score of each question's first hit (for choosing ``min_score``).
        latency_ms: p50/p99/mean of ``search``.
    """

    name: str
    queries: int
    chunks: int
    corpus_tokens: int
    gold_in_shortlist: Mapping[int, float]
    tokens_sent: Mapping[int, float]
    top_scores: tuple[float, ...]
    latency_ms: Mapping[str, float]

    def format(self) -> str:
        """A small table: k, gold in shortlist, corpus tokens sent."""
        lines = [
            f"{self.name}: {self.queries} questions, {self.chunks} chunks, {self.corpus_tokens} corpus tokens, "
            f"search p50={self.latency_ms['p50']:.1f}ms p99={self.latency_ms['p99']:.1f}ms",
            "   k  gold-in-shortlist  corpus-tokens-sent",
        ]
        for k in sorted(self.gold_in_shortlist):
            lines.append(f"{k:4d}  {self.gold_in_shortlist[k]:17.4f}  {self.tokens_sent[k]:17.4%}")
        return "\n".join(lines)


def prefilter_report(
    prefilter: Prefilter,
    dataset: Dataset,
    *,
    ks: Sequence[int] = (1, 3, 5, 10, 20, 50),
    mode: SearchMode = DEFAULT_MODE,
    name: str | None = None,
    **search_options: Any,
) -> PrefilterReport:
    """Measure what shortlists of k chunks keep, at each k.

    For each k: the share of questions whose gold passage has a chunk among the top-k chunks, and the share of the
    corpus's tokens those k chunks hold (one search per question, at the largest k).
    """
    if not ks or any(int(k) < 1 for k in ks):
        msg = f"ks must be positive, got {ks!r}."
        raise ConfigError(msg)
    corpus_tokens = prefilter.corpus_tokens()
    top = max(ks)
    gold: dict[int, list[float]] = {k: [] for k in ks}
    sent: dict[int, list[float]] = {k: [] for k in ks}
    scores: list[float] = []
    latencies: list[float] = []
    for qid, question in dataset.queries.items():
        relevant = dataset.qrels[qid]
        t = time.perf_counter()
        result = prefilter.search(question, k=top, mode=mode, **search_options)
        latencies.append((time.perf_counter() - t) * 1000.0)
        hits = result.hits
        scores.append(hits[0].score if hits else -1.0)
        tokens = np.cumsum([_hit_tokens(prefilter, h) for h in hits]) if hits else np.zeros(0)
        for k in ks:
            sources = {str(h.metadata.get("source")) for h in hits[:k]}
            gold[k].append(1.0 if sources & set(relevant) else 0.0)
            kept = float(tokens[min(k, len(hits)) - 1]) if len(hits) else 0.0
            sent[k].append(kept / corpus_tokens if corpus_tokens else 0.0)
    return PrefilterReport(
        name=name or f"{dataset.name} {mode}",
        queries=len(dataset.queries),
        chunks=prefilter.count(),
        corpus_tokens=corpus_tokens,
        gold_in_shortlist={k: float(np.mean(v)) for k, v in gold.items()},
        tokens_sent={k: float(np.mean(v)) for k, v in sent.items()},
        top_scores=tuple(scores),
        latency_ms=_percentiles(latencies),
    )


def _hit_tokens(prefilter: Prefilter, hit: Any) -> int:
    """The hit's word pieces: the count its chunk carries from ingest, else (none recorded) its text tokenised."""
    tokens = getattr(hit, "tokens", None)
    if isinstance(tokens, int) and tokens > 0:
        return tokens
    return len(prefilter.encoder.tokenizer.encode(hit.text, add_special_tokens=False).ids)


@dataclass(frozen=True)
class ThresholdRow:
    """One ``min_score`` and what it does.

    Attributes:
        min_score: The threshold.
        unanswerable_empty: Share of unanswerable questions whose shortlist is empty (correctly: no LLM call).
        answerable_kept: Share of answerable questions whose shortlist still holds the gold passage.
        answerable_nonempty: Share of answerable questions whose shortlist is not empty.
    """

    min_score: float
    unanswerable_empty: float
    answerable_kept: float
    answerable_nonempty: float


def threshold_report(
    prefilter: Prefilter,
    dataset: Dataset,
    thresholds: Sequence[float],
    *,
    k: int = 20,
    mode: SearchMode = DEFAULT_MODE,
) -> list[ThresholdRow]:
    """Measure what each ``min_score`` does to unanswerable and answerable questions.

    For each threshold: how many unanswerable questions get an empty shortlist, and how many answerable ones keep
    their gold passage. One unthresholded search per question; the threshold is applied to its hits exactly as
    ``search(min_score=...)`` does (cosine score >= threshold).
    """
    if not dataset.unanswerable:
        msg = f"Dataset {dataset.name!r} has no unanswerable questions."
        raise ConfigError(msg)
    answerable: list[tuple[list[float], list[bool]]] = []
    for qid, question in dataset.queries.items():
        hits = prefilter.search(question, k=k, mode=mode).hits
        gold = dataset.qrels[qid]
        answerable.append(([h.score for h in hits], [str(h.metadata.get("source")) in gold for h in hits]))
    unanswerable_top = []
    for question in dataset.unanswerable.values():
        hits = prefilter.search(question, k=1, mode=mode).hits
        unanswerable_top.append(hits[0].score if hits else -1.0)
    rows = []
    for t in thresholds:
        empty = float(np.mean([s < t for s in unanswerable_top]))
        kept = float(np.mean([any(s >= t and g for s, g in zip(sc, gd, strict=True)) for sc, gd in answerable]))
        nonempty = float(np.mean([bool(sc) and sc[0] >= t for sc, _ in answerable]))
        rows.append(ThresholdRow(float(t), empty, kept, nonempty))
    return rows
