"""Retrieval quality of the pre-filter on SciFact, SQuAD 2.0 (dev half) and StackFAQ; prints tables.

    python benchmarks/quality.py                       # all three sets
    python benchmarks/quality.py --sets scifact        # one set
    python benchmarks/quality.py --db /tmp/sl-quality  # where the Chroma folders go (reused: a second run
                                                       # embeds nothing)

Data: ../shared/data (override with --data). The collections are embedded Chroma folders under --db (default
benchmarks/results/chroma, git-ignored).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shortlist import Encoder
from shortlist.evaluate import (
    evaluate,
    index_dataset,
    load_beir,
    load_squad2,
    load_stackfaq,
    prefilter_report,
    prefilter_retriever,
    threshold_report,
)
from shortlist.prefilter import Prefilter

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_DB = REPO / "benchmarks" / "results" / "chroma"


def _progress(label: str):
    last = [0.0]

    def show(report) -> None:
        now = time.perf_counter()
        if now - last[0] > 10:
            last[0] = now
            print(f"  [{label}] {report.documents} docs, {report.chunks} chunks, {report.added} embedded", flush=True)

    return show


def _open(db: Path, name: str, encoder: Encoder, chunk_tokens: int, dataset, label: str) -> Prefilter:
    pf = Prefilter(f"{name}-{chunk_tokens}", path=db, encoder=encoder, chunk_tokens=chunk_tokens)
    t = time.perf_counter()
    rep = index_dataset(pf, dataset, progress=_progress(label))
    print(
        f"[{label}] {len(dataset.corpus)} docs -> {pf.count()} chunks of <= {chunk_tokens} tokens, "
        f"{pf.corpus_tokens()} corpus tokens; embedded {rep.added} new chunks in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    return pf


def scifact(data: Path, db: Path, encoder: Encoder, chunk_tokens: int) -> None:
    ds = load_beir(data / "beir_scifact", name="scifact")
    pf = _open(db, "scifact", encoder, chunk_tokens, ds, "scifact")
    pf.keyword_index()  # build once, outside the timings
    print(f"\n## SciFact ({len(ds.queries)} queries, {len(ds.corpus)} abstracts, chunks <= {chunk_tokens} tokens)")
    for mode in ("dense", "keyword", "hybrid"):
        rep = evaluate(prefilter_retriever(pf, mode=mode), ds, ks=(1, 10, 100), name=f"scifact {mode}")
        print(rep.format(), flush=True)


def squad(data: Path, db: Path, encoder: Encoder, chunk_tokens: int, thresholds: list[float]) -> None:
    ds = load_squad2(data / "squad2_dev_cs224n")
    pf = _open(db, "squad2", encoder, chunk_tokens, ds, "squad2")
    pf.keyword_index()
    print(
        f"\n## SQuAD 2.0 dev half ({len(ds.queries)} answerable + {len(ds.unanswerable)} unanswerable questions, "
        f"{len(ds.corpus)} passages, {pf.count()} chunks <= {chunk_tokens} tokens)"
    )
    for mode in ("dense", "hybrid"):
        for cap in (None, 1):
            label = f"squad2 {mode}" + (", max_per_source=1" if cap else "")
            rep = prefilter_report(pf, ds, ks=(1, 3, 5, 10, 20, 50), mode=mode, name=label, max_per_source=cap)
            print(rep.format(), flush=True)
    rows = threshold_report(pf, ds, thresholds, k=20, mode="dense")
    print("\nmin_score (dense, k=20): unanswerable -> empty shortlist | answerable -> gold kept | answerable non-empty")
    for row in rows:
        print(
            f"  {row.min_score:5.2f}  {row.unanswerable_empty:8.3f}  {row.answerable_kept:8.3f}  "
            f"{row.answerable_nonempty:8.3f}",
            flush=True,
        )


def stackfaq(data: Path, db: Path, encoder: Encoder, chunk_tokens: int) -> None:
    ds = load_stackfaq(data / "stackfaq")
    pf = _open(db, "stackfaq", encoder, chunk_tokens, ds, "stackfaq")
    pf.keyword_index()
    print(f"\n## StackFAQ ({len(ds.queries)} paraphrased questions -> {len(ds.corpus)} canonical FAQ questions)")
    for mode in ("dense", "keyword", "hybrid"):
        rep = evaluate(prefilter_retriever(pf, mode=mode), ds, ks=(1, 5, 10), name=f"stackfaq {mode}")
        print(rep.format(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="scifact,squad,stackfaq")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--chunk-tokens", type=int, default=128)
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch.set_num_threads (1 is faster on a busy machine)"
    )
    parser.add_argument("--thresholds", default="0.2,0.25,0.3,0.35,0.4,0.45,0.5")
    args = parser.parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    encoder = Encoder.shared()
    encoder.load()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    for name in sets:
        if name == "scifact":
            scifact(args.data, args.db, encoder, args.chunk_tokens)
        elif name == "squad":
            thresholds = [float(x) for x in args.thresholds.split(",")]
            squad(args.data, args.db, encoder, args.chunk_tokens, thresholds)
        elif name == "stackfaq":
            stackfaq(args.data, args.db, encoder, args.chunk_tokens)
        else:
            print(f"unknown set {name!r}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
