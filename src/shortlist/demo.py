"""The main job behind ``make demo``: embed a few sentences offline and print their similarity table."""

from __future__ import annotations

import sys
import time

from shortlist.encoder import Encoder

SENTENCES = [
    "How do I catch several exceptions in one except clause?",
    "Handle multiple exception types with a tuple in a single except block.",
    "How do I read a file line by line?",
    "Iterate over the file object to get one line at a time.",
    "The weather is lovely today.",
]


def main() -> int:
    """Embed :data:`SENTENCES` with the shared encoder and print the cosine similarity of every pair."""
    started = time.perf_counter()
    encoder = Encoder.shared()
    vectors = encoder.embed_documents(SENTENCES)
    seconds = time.perf_counter() - started
    out = sys.stdout
    out.write(f"model: {encoder.model_name} ({encoder.source.origin}: {encoder.source.location})\n")
    out.write(f"backend: {encoder.backend_name}, device: {encoder.device}, dimension: {encoder.dimension}\n")
    out.write(f"loaded and embedded {len(SENTENCES)} sentences in {seconds:.1f} s\n\n")
    sims = vectors @ vectors.T
    out.write("      " + "".join(f"  [{j}] " for j in range(len(SENTENCES))) + "\n")
    for i in range(len(SENTENCES)):
        out.write(f"  [{i}] " + "".join(f"{sims[i, j]:6.3f} " for j in range(len(SENTENCES))) + "\n")
    out.write("\n")
    for i, sentence in enumerate(SENTENCES):
        out.write(f"  [{i}] {sentence}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
