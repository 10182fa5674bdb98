"""Shared by the integration scripts: where the documents come from (not importable API; examples only)."""

from __future__ import annotations

import argparse
import sys

from shortlist import Prefilter
from shortlist.corpus import demo_corpus

SLICE_TOPICS = ["try", "exceptions", "raise", "with", "context-managers", "for"]
SLICE_MODULES = ["csv"]


def add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="embedded Chroma folder (default: SHORTLIST_CHROMA_PATH or the data folder)")
    parser.add_argument(
        "--collection",
        default="python-docs",
        help="collection to search (default: python-docs, the one `make demo` builds)",
    )
    parser.add_argument(
        "--slice",
        action="store_true",
        help="instead, index a small slice of the demo corpus in "
        "memory (about 60 chunks; needs nothing built beforehand)",
    )


def open_prefilter(args: argparse.Namespace) -> Prefilter:
    """The demo index built by `make demo`, or a small in-memory slice of the demo corpus with --slice."""
    if args.slice:
        pf = Prefilter.in_memory("slice")
        docs = demo_corpus(topics=SLICE_TOPICS, modules=SLICE_MODULES)
        report = pf.add_documents([d.as_dict() for d in docs])
        print(
            f"indexed a slice of the demo corpus in memory: {report.documents} documents, {report.chunks} chunks",
            file=sys.stderr,
        )
        return pf
    pf = Prefilter(args.collection, path=args.db)
    if pf.count() == 0:
        sys.exit(
            f"error: collection {args.collection!r} is empty: run `make demo` (or `shortlist demo`) first, "
            "or pass --slice"
        )
    return pf
