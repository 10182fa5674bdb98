"""The ingest path: coerce documents -> chunk (titles) -> diff against the store -> embed -> write -> report.

Stages: :mod:`.coerce` (strings, dicts, LangChain and LlamaIndex documents, read by their shape), :mod:`.chunking`
(the title policy), :mod:`.diff` (new / changed / unchanged / stale), run by :class:`.pipeline.Ingestor`.
"""

from __future__ import annotations

from shortlist.ingest.pipeline import DEFAULT_INGEST_BATCH, Ingestor
from shortlist.ingest.report import IngestReport

__all__ = ["DEFAULT_INGEST_BATCH", "IngestReport", "Ingestor"]
