"""Evaluate the shortlist pre-filter on a BEIR-style folder (corpus.jsonl, queries.jsonl, qrels/test.tsv).

    python integrations/evaluate_beir.py ../shared/data/beir_scifact
    python integrations/evaluate_beir.py ../shared/data/beir_scifact --modes dense,hybrid --max-queries 100
    python integrations/evaluate_beir.py my_beir_folder --db /tmp/eval-db --json

The corpus is indexed once into an embedded Chroma folder (--db; reused by later runs), then each mode is scored:
nDCG@10, Top-1, Recall@k, MRR@k, latency, and the share of the corpus's tokens a shortlist of k chunks sends while
keeping the gold document. Uses only shortlist's public API (shortlist.evaluate); `shortlist eval` is the same as a
command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from shortlist import Prefilter
from shortlist.evaluate import evaluate, index_dataset, load_beir, prefilter_report, prefilter_retriever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="BEIR folder")
    parser.add_argument("--db", type=Path, help="embedded Chroma folder for the index (default: the data folder)")
    parser.add_argument("--collection", help="collection name (default: beir-<folder name>)")
    parser.add_argument("--modes", default="dense,hybrid", help="comma-separated: dense, keyword, hybrid")
    parser.add_argument("--ks", default="1,10,100", help="Recall/MRR cut-offs (default 1,10,100)")
    parser.add_argument("--max-queries", type=int, help="a fixed random sample of N queries")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    if not (args.dataset / "corpus.jsonl").is_file():
        sys.exit(f"error: {args.dataset} has no corpus.jsonl: not a BEIR folder")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"dense", "keyword", "hybrid"}:
        sys.exit(f"error: --modes takes dense, keyword, hybrid; got {args.modes!r}")
    ks = tuple(int(k) for k in args.ks.split(","))

    data = load_beir(args.dataset)
    if args.max_queries:
        data = data.subset(args.max_queries)
    name = args.collection or "beir-" + "".join(c if c.isalnum() or c in "._-" else "-" for c in args.dataset.name)
    pf = Prefilter(name, path=args.db)
    started = time.perf_counter()
    ingest = index_dataset(pf, data)
    index_s = time.perf_counter() - started
    if "keyword" in modes or "hybrid" in modes:
        pf.keyword_index()

    results = {}
    for mode in modes:
        rep = evaluate(prefilter_retriever(pf, mode=mode), data, ks=ks, name=mode)
        short = prefilter_report(pf, data, ks=(1, 5, 10), mode=mode, name=mode)
        results[mode] = {
            "ndcg@10": rep.ndcg10,
            "top1": rep.top1,
            "recall": {str(k): v for k, v in rep.recall.items()},
            "mrr": {str(k): v for k, v in rep.mrr.items()},
            "p50_ms": rep.latency_ms["p50"],
            "gold_in_shortlist": {str(k): v for k, v in short.gold_in_shortlist.items()},
            "tokens_sent": {str(k): v for k, v in short.tokens_sent.items()},
        }
    summary = {
        "dataset": data.name,
        "documents": len(data.corpus),
        "queries": len(data.queries),
        "chunks": pf.count(),
        "embedded": ingest.added,
        "index_seconds": round(index_s, 1),
        "modes": results,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"{data.name}: {summary['documents']:,} documents, {summary['queries']} queries, {summary['chunks']:,} chunks "
        f"({ingest.added:,} embedded now, {index_s:.1f} s)"
    )
    print(
        f"{'mode':<8} {'nDCG@10':>8} {'Top-1':>6} "
        + " ".join(f"{'R@' + str(k):>6}" for k in ks)
        + f" {'p50 ms':>7} {'gold in 10 chunks':>18} {'tokens sent':>12}"
    )
    for mode, r in results.items():
        print(
            f"{mode:<8} {r['ndcg@10']:>8.4f} {r['top1']:>6.3f} "
            + " ".join(f"{r['recall'][str(k)]:>6.3f}" for k in ks)
            + f" {r['p50_ms']:>7.1f} {r['gold_in_shortlist']['10']:>18.3f} {r['tokens_sent']['10']:>12.3%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
