"""shortlist.distributed without Ray: the rows documents travel in, a batch's stats, the report's tally."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from shortlist.distributed import DistributedReport
from shortlist.distributed.report import tally
from shortlist.distributed.worker import DOC_COLUMN, BatchStats, document_rows, documents_of
from shortlist.errors import ConfigError, InputError
from shortlist.ingest.coerce import SourceDocument


def test_importing_it_does_not_import_ray() -> None:
    code = "import sys, shortlist, shortlist.cli, shortlist.distributed; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_documents_travel_exactly() -> None:
    docs = [
        SourceDocument("a", "Cats sleep.", {"title": "Cats", "page": 2, "score": 0.25, "ok": True}),
        SourceDocument("b", "Dogs bark.", {"path": "/x/b.md"}),  # other keys: no struct merging
    ]
    rows = document_rows(docs)
    batch = {DOC_COLUMN: np.array([r[DOC_COLUMN] for r in rows], dtype=object)}
    assert documents_of(batch) == docs


def test_a_users_rows_read_as_add_documents_reads_dicts() -> None:
    batch = {
        "id": np.array(["d1", None], dtype=object),
        "text": np.array(["  Cats\tsleep. ", "Dogs bark."], dtype=object),
        "metadata": np.array([{"lang": "en", "page": None}, {"lang": None, "page": 3}], dtype=object),
    }
    first, second = documents_of(batch)
    assert (first.source, first.text, dict(first.metadata)) == ("d1", "Cats sleep.", {"lang": "en"})
    assert second.source.startswith("doc-") and dict(second.metadata) == {"page": 3}
    with pytest.raises(InputError, match="no text"):
        documents_of({"id": np.array(["x"], dtype=object)})


def test_stats_round_trip_and_tally() -> None:
    a = BatchStats("h:1", documents=2, chunks=5, added=5, tokens=50, chunk_s=0.1, diff_s=0.1, embed_s=1.0, write_s=0.2)
    b = BatchStats("h:2", documents=1, chunks=3, added=0, skipped=3, tokens=30, chunk_s=0.1, diff_s=0.1)
    row = {k: np.asarray(v[0]) for k, v in a.columns().items()}
    assert BatchStats.from_row(row) == a
    report = tally(tally(DistributedReport(), [a]), [b, a])
    assert (report.documents, report.chunks, report.added, report.skipped, report.tokens) == (5, 13, 10, 3, 130)
    assert [w.worker for w in report.workers] == ["h:1", "h:2"]
    one = report.workers[0]
    assert (one.batches, one.chunks, one.added) == (2, 10, 10)
    assert one.embedded_per_second == pytest.approx(10 / 2.0)
    assert one.chunks_per_second == pytest.approx(10 / 2.8)
    data = report.as_dict()
    assert "files" not in data and data["workers"][1]["embedded_per_second"] == 0.0


def test_bad_arguments_are_refused_before_ray_starts() -> None:
    from shortlist.distributed import index

    with pytest.raises(ConfigError, match="Chroma server"):
        index(["x"], collection="c1x")
    with pytest.raises(ConfigError, match="batch_size"):
        index(["x"], host="127.0.0.1", batch_size=0)
    with pytest.raises(ConfigError, match="actors"):
        index(["x"], host="127.0.0.1", actors=0)
