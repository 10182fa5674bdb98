"""Unmodified Ollama and OpenAI clients against `shortlist serve` (start it first: `shortlist serve`).

    shortlist serve &                                   # 127.0.0.1:11434, Ollama's port
    python integrations/serve_clients.py                # ollama + openai clients, similarity, search
    python integrations/serve_clients.py --url http://127.0.0.1:8080 --query "how do I read a file?"

Needs `pip install ollama openai httpx`. With SHORTLIST_API_KEY set on the server, set it here too: it is sent as
`Authorization: Bearer <key>`.
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx
import numpy as np

TEXTS = ["How do I reset my password?", "I forgot my login credentials.", "Bananas are rich in potassium."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:11434", help="The server (default: %(default)s).")
    parser.add_argument("--model", default="all-minilm", help="Model name the clients send (default: %(default)s).")
    parser.add_argument("--query", help="Also search the server's collection with this question.")
    args = parser.parse_args()
    key = os.environ.get("SHORTLIST_API_KEY", "").strip()
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    import ollama
    import openai

    client = ollama.Client(host=args.url, headers=headers)
    vectors = np.asarray(client.embed(model=args.model, input=TEXTS).embeddings, dtype=np.float32)
    print(f"ollama.Client.embed: {vectors.shape[0]} vectors of {vectors.shape[1]} dimensions")
    oa = openai.OpenAI(base_url=args.url.rstrip("/") + "/v1", api_key=key or "unused", max_retries=0)
    data = oa.embeddings.create(model=args.model, input=TEXTS).data
    same = np.abs(np.asarray([d.embedding for d in data], dtype=np.float32) - vectors).max()
    print(f"openai embeddings.create: {len(data)} vectors; largest difference from Ollama's route: {same:.1e}")
    print("cosine similarity (vectors are normalised, so a dot product):")
    for i, j in ((0, 1), (0, 2)):
        print(f"  {float(vectors[i] @ vectors[j]):.3f}  {TEXTS[i]!r} vs {TEXTS[j]!r}")
    with httpx.Client(base_url=args.url, headers=headers, timeout=60, trust_env=False) as http:
        sim = http.post("/api/similarity", json={"text1": TEXTS[0], "text2": TEXTS[1]}).json()["similarity"]
        print(f"/api/similarity: {sim:.3f}")
        if args.query:
            resp = http.post("/api/search", json={"query": args.query, "k": 3})
            if resp.status_code != 200:
                print(f"/api/search: {resp.status_code} {resp.json().get('error')}", file=sys.stderr)
                return 1
            body = resp.json()
            for hit in body["hits"]:
                print(f"  {hit['rank']}. {hit['score']:.3f}  {hit['source']}  {hit['text'][:60]!r}")
            st = body["stats"]
            print(f"  kept {st['kept_tokens']} of {st['corpus_tokens']} tokens ({st['saved_share']:.1%} saved)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
