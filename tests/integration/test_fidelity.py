"""Fidelity to sentence-transformers and the published STS-B figure, on the real model and the real data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from shortlist import Encoder


def _stsb_test(shared_data: Path) -> tuple[list[str], list[str], np.ndarray]:
    path = shared_data / "stsb_en" / "sts-test.clean.tsv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 1379
    return (
        [r["sentence1"] for r in rows],
        [r["sentence2"] for r in rows],
        np.array([float(r["score"]) for r in rows]),
    )


@pytest.fixture(scope="module")
def stsb(shared_data: Path) -> tuple[list[str], list[str], np.ndarray]:
    return _stsb_test(shared_data)


def test_vectors_match_plain_sentence_transformers(
    encoder: Encoder, stsb: tuple[list[str], list[str], np.ndarray]
) -> None:
    """Our vectors equal `SentenceTransformer(...).encode(..., normalize_embeddings=True)` on the same weights."""
    from sentence_transformers import SentenceTransformer

    s1, s2, _ = stsb
    sentences = sorted(set(s1) | set(s2))
    assert encoder.source.path is not None
    reference = SentenceTransformer(str(encoder.source.path), device="cpu", local_files_only=True)
    ref = reference.encode(sentences, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    ours = encoder.embed_documents(sentences, batch_size=64)
    cos = np.sum(ref * ours, axis=1)
    print(
        f"\nSTS-B test, {len(sentences)} sentences: cosine to sentence-transformers "
        f"min {cos.min():.6f} mean {cos.mean():.6f}"
    )
    assert ours.dtype == np.float32
    assert cos.min() >= 0.9999


def test_stsb_spearman_matches_published(encoder: Encoder, stsb: tuple[list[str], list[str], np.ndarray]) -> None:
    """Cosine-similarity Spearman on STS-B test is the published 0.820 (MTEB: 0.8203) within 0.005."""
    s1, s2, gold = stsb
    a = encoder.embed_documents(s1, batch_size=64)
    b = encoder.embed_documents(s2, batch_size=64)
    predicted = np.sum(a * b, axis=1)
    rho = float(spearmanr(predicted, gold).statistic)
    print(f"\nSTS-B test Spearman (cosine): {rho:.4f} (published 0.820)")
    assert abs(rho - 0.820) <= 0.005
