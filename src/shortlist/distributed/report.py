"""What a distributed ingest did: :class:`DistributedReport`, with one :class:`WorkerReport` per actor."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from shortlist.distributed.worker import BatchStats

__all__ = ["DistributedReport", "WorkerReport", "tally"]


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class WorkerReport:
    """One actor's share (an actor that Ray restarted after a crash counts as a new one: another pid).

    Attributes:
        worker: ``host:pid``.
        batches: Batches it finished.
        documents: Their documents.
        chunks: Their chunks.
        added: Chunks it embedded and wrote.
        busy_s: Seconds it spent on them (chunk + diff + embed + write).
        embed_s: Of which embedding.
    """

    worker: str
    batches: int = 0
    documents: int = 0
    chunks: int = 0
    added: int = 0
    busy_s: float = 0.0
    embed_s: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        """Chunks it handled per busy second."""
        return _rate(self.chunks, self.busy_s)

    @property
    def embedded_per_second(self) -> float:
        """Chunks it embedded per second of embedding (the encoder's rate on that actor)."""
        return _rate(self.added, self.embed_s)


@dataclass(frozen=True)
class DistributedReport:
    """What :func:`shortlist.distributed.index` did.

    Attributes:
        documents: Documents read.
        chunks: Chunks they were split into (after removing duplicates).
        added: Chunks embedded and written (not stored before).
        skipped: Chunks already stored with the same metadata (not embedded again).
        updated: Chunks already stored whose metadata was rewritten (not embedded again).
        removed: Stale chunks of re-ingested documents deleted.
        tokens: Word pieces in the chunks.
        seconds: Wall time, from reading the files to the last write (Ray's start-up included).
        read_s: Seconds reading the files on the driver.
        chunk_s: Seconds chunking, summed over the actors.
        diff_s: Seconds asking the store which chunks it holds, summed over the actors.
        embed_s: Seconds embedding, summed over the actors.
        write_s: Seconds writing to the server, summed over the actors.
        total_chunks: Chunks in the collection afterwards.
        workers: One :class:`WorkerReport` per actor, by name.
        files: What :func:`~shortlist.loaders.load_files` read and could not read (``None`` for a Dataset).
    """

    documents: int = 0
    chunks: int = 0
    added: int = 0
    skipped: int = 0
    updated: int = 0
    removed: int = 0
    tokens: int = 0
    seconds: float = 0.0
    read_s: float = 0.0
    chunk_s: float = 0.0
    diff_s: float = 0.0
    embed_s: float = 0.0
    write_s: float = 0.0
    total_chunks: int = 0
    workers: tuple[WorkerReport, ...] = ()
    files: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def chunks_per_second(self) -> float:
        """Chunks per second of wall time."""
        return _rate(self.chunks, self.seconds)

    @property
    def added_per_second(self) -> float:
        """Chunks embedded and written per second of wall time."""
        return _rate(self.added, self.seconds)

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data (rates and the per-worker list included)."""
        out = asdict(self)
        out["chunks_per_second"] = round(self.chunks_per_second, 2)
        out["added_per_second"] = round(self.added_per_second, 2)
        out["workers"] = [
            {
                **asdict(w),
                "chunks_per_second": round(w.chunks_per_second, 2),
                "embedded_per_second": round(w.embedded_per_second, 2),
            }
            for w in self.workers
        ]
        if out["files"] is None:
            del out["files"]
        return out


def tally(report: DistributedReport, batches: Iterable[BatchStats]) -> DistributedReport:
    """``report`` with ``batches`` added to its counts, its time split and its workers."""
    workers = {w.worker: w for w in report.workers}
    counts = {
        k: getattr(report, k) for k in ("documents", "chunks", "added", "skipped", "updated", "removed", "tokens")
    }
    times = {k: getattr(report, k) for k in ("chunk_s", "diff_s", "embed_s", "write_s")}
    for b in batches:
        for k in counts:
            counts[k] += getattr(b, k)
        for k in times:
            times[k] += getattr(b, k)
        w = workers.get(b.worker, WorkerReport(b.worker))
        workers[b.worker] = replace(
            w,
            batches=w.batches + 1,
            documents=w.documents + b.documents,
            chunks=w.chunks + b.chunks,
            added=w.added + b.added,
            busy_s=w.busy_s + b.chunk_s + b.diff_s + b.embed_s + b.write_s,
            embed_s=w.embed_s + b.embed_s,
        )
    return replace(report, **counts, **times, workers=tuple(sorted(workers.values(), key=lambda w: w.worker)))
