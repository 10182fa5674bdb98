"""Behaviour snapshot: the chunks, vectors and shortlists shortlist gives on the five public sets, to compare code.

    python benchmarks/snapshot.py --out before.json          # on one tree (e.g. a worktree of the old commit)
    python benchmarks/snapshot.py --out after.json           # on another
    python benchmarks/snapshot.py --out before2.json         # the old tree again: its own run-to-run noise
    python benchmarks/snapshot.py --compare before.json after.json --noise before2.json
    python benchmarks/snapshot.py --out build.json --db dbs               # the old tree builds the folders
    cp -r dbs dbs-old; cp -r dbs dbs-new
    python benchmarks/snapshot.py --out before.json --db dbs-old          # the old tree on the reopened files
    python benchmarks/snapshot.py --out after.json --db dbs-new           # the new tree on the same files
    python benchmarks/snapshot.py --compare before.json after.json        # no noise: SAME or a real change

Used to show that a change meant to keep behaviour (a refactor) keeps it: for each set (a fixed slice of its
corpus, a fixed sample of its questions) it records every chunk's id, text, metadata and vector (as stored in
Chroma), and the shortlist (ids and scores, in order) of each question in dense, keyword and hybrid mode and with
the pre-filter's options (MMR, per-source cap, token budget, threshold, a ``where`` filter). ``--compare`` prints,
per set, how many chunks/shortlists differ and the largest vector and score differences. Chroma's HNSW graph is
built by several threads, so a few approximate dense candidate lists differ between two runs of the same code:
``--noise`` takes a second snapshot of the old tree and counts a shortlist that differs there too as noise, not as
a difference, when the new one equals one of the two old ones.

Only public API is used (``Prefilter``, ``shortlist.evaluate``'s loaders), so the script runs on old and new code
alike: point ``PYTHONPATH`` at the tree to snapshot.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"

# name -> (loader, folder, documents kept, chunk tokens)
SETS: dict[str, tuple[str, str, int, int]] = {
    "scifact": ("beir", "beir_scifact", 400, 128),
    "squad2": ("squad2", "squad2_dev_cs224n", 200, 128),
    "stackfaq": ("stackfaq", "stackfaq", 400, 128),
    "xquad-zh": ("squad2", "xquad/zh", 240, 126),
    "xquad-en": ("squad2", "xquad/en", 240, 126),
}
QUERIES = 40

# option sets searched for every question: (label, search keyword arguments)
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("dense", {"mode": "dense", "k": 10}),
    ("keyword", {"mode": "keyword", "k": 10}),
    ("hybrid", {"mode": "hybrid", "k": 10}),
    ("hybrid-default-k", {}),
    ("hybrid-mmr", {"mode": "hybrid", "k": 8, "mmr": True, "mmr_lambda": 0.6}),
    ("dense-mmr", {"mode": "dense", "k": 8, "mmr": True}),
    ("hybrid-cap1", {"mode": "hybrid", "k": 8, "max_per_source": 1}),
    ("hybrid-budget", {"mode": "hybrid", "k": 10, "budget": 300}),
    ("dense-min", {"mode": "dense", "k": 10, "min_score": 0.35}),
    ("hybrid-min", {"mode": "hybrid", "k": 10, "min_score": 0.3}),
    ("keyword-fetch", {"mode": "keyword", "k": 5, "fetch_k": 30}),
]


def _load(kind: str, folder: Path) -> Any:
    from shortlist.evaluate import load_beir, load_squad2, load_stackfaq

    if kind == "beir":
        return load_beir(folder)
    if kind == "squad2":
        return load_squad2(folder)
    return load_stackfaq(folder)


def snapshot(data: Path, db: Path | None = None) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings

    from shortlist import Encoder
    from shortlist.prefilter import Prefilter

    encoder = Encoder.shared()
    out: dict[str, Any] = {
        "backend": str(getattr(encoder, "backend_name", getattr(encoder, "backend", "?"))),
        "sets": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        tmp = db or Path(scratch)
        for name, (kind, folder, n_docs, chunk_tokens) in SETS.items():
            ds = _load(kind, data / folder)
            docs = ds.documents()[:n_docs]
            kept = {d["id"] for d in docs}
            client = chromadb.PersistentClient(
                path=str(Path(tmp) / name), settings=Settings(anonymized_telemetry=False)
            )
            pf = Prefilter(name, client=client, encoder=encoder, chunk_tokens=chunk_tokens)
            pf.add_documents(docs, batch_size=128)
            col = client.get_collection(name)
            got = col.get(include=["documents", "metadatas", "embeddings"])
            chunks = {
                cid: {"text": text, "metadata": meta, "vector": np.asarray(vec, dtype=np.float32).round(7).tolist()}
                for cid, text, meta, vec in zip(
                    got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
                )
            }
            qids = sorted(ds.queries)
            rng = np.random.default_rng(0)
            rng.shuffle(qids)
            # questions about the kept documents first, so that the shortlists are about something
            about = [q for q in qids if set(ds.qrels.get(q, {})) & kept]
            chosen = (about + [q for q in qids if q not in about])[:QUERIES]
            sources = sorted(kept)[: max(1, len(kept) // 4)]
            variants = [*VARIANTS, ("hybrid-where", {"mode": "hybrid", "k": 6, "where": {"source": {"$in": sources}}})]
            lists: dict[str, Any] = {}
            for qid in chosen:
                question = ds.queries[qid]
                for label, kwargs in variants:
                    sl = pf.search(question, **kwargs)
                    lists[f"{qid}|{label}"] = [[h.id, round(float(h.score), 6)] for h in sl.hits]
            out["sets"][name] = {"chunks": chunks, "shortlists": lists}
            print(f"{name}: {len(chunks)} chunks, {len(lists)} shortlists", file=sys.stderr)
    return out


def compare(a_path: Path, b_path: Path, noise_path: Path | None = None) -> int:
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    n = json.loads(noise_path.read_text()) if noise_path else None
    bad = 0
    print(f"backends: {a['backend']} vs {b['backend']}")
    print(
        f"{'set':<10} {'chunks':>7} {'id/text/meta diff':>18} {'max |dv|':>10} {'lists':>6} {'order diff':>10} "
        f"{'noise':>6} {'max |ds|':>10}"
    )
    for name in a["sets"]:
        sa, sb = a["sets"][name], b["sets"].get(name)
        if sb is None:
            print(f"{name:<10} missing in {b_path}")
            bad += 1
            continue
        ca, cb = sa["chunks"], sb["chunks"]
        diff_chunks = len(set(ca) ^ set(cb)) + sum(
            1
            for cid in set(ca) & set(cb)
            if (ca[cid]["text"], ca[cid]["metadata"]) != (cb[cid]["text"], cb[cid]["metadata"])
        )
        dv = max(
            (float(np.abs(np.asarray(ca[c]["vector"]) - np.asarray(cb[c]["vector"])).max()) for c in set(ca) & set(cb)),
            default=0.0,
        )
        la, lb = sa["shortlists"], sb["shortlists"]
        ln = n["sets"][name]["shortlists"] if n else {}

        def ids(lists: dict[str, Any], key: str) -> list[str]:
            return [h[0] for h in lists.get(key, [])]

        differing = [key for key in la if ids(la, key) != ids(lb, key)]
        noisy = [
            key for key in differing if key in ln and ids(la, key) != ids(ln, key) and ids(lb, key) == ids(ln, key)
        ]
        order = len(differing) - len(noisy)
        ds = max(
            (
                abs(x[1] - y[1])
                for key in la
                if [h[0] for h in la[key]] == [h[0] for h in lb.get(key, [])]
                for x, y in zip(la[key], lb[key], strict=True)
            ),
            default=0.0,
        )
        bad += diff_chunks + order + int(dv > 1e-6) + int(ds > 1e-5)
        print(
            f"{name:<10} {len(ca):>7} {diff_chunks:>18} {dv:>10.2e} {len(la):>6} {order:>10} {len(noisy):>6} "
            f"{ds:>10.2e}"
        )
    print("SAME" if bad == 0 else f"DIFFERENT ({bad})")
    return 0 if bad == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--db",
        type=Path,
        help="keep the Chroma folders here (default: a temporary folder); a copy made by another tree is reused as it "
        "is (ingest finds every chunk stored), which compares the two trees on the same HNSW graph, without noise",
    )
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--noise", type=Path, metavar="BEFORE2", help="a second snapshot of the old tree")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare, args.noise)
    if args.out is None:
        parser.error("give --out FILE or --compare BEFORE AFTER")
    args.out.write_text(json.dumps(snapshot(args.data, args.db)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
