"""Combine concurrent embedding requests into encoder batches.

A forward pass of all-MiniLM-L6-v2 over 32 short texts costs little more than over one, so a server that runs one
request at a time wastes most of the model's throughput and its queue grows without bound under load. The
:class:`EmbeddingBatcher` keeps a short queue of pending requests; one worker takes everything queued (up to
``max_batch`` texts) into a single :meth:`Encoder.embed_documents <shortlist.encoder.Encoder.embed_documents>` call
on a dedicated thread, then hands each request its own rows. While a batch runs, new requests queue up and form
the next batch, so batches grow with the load and an idle server adds no waiting time.

The queue is bounded (``max_queue`` texts): beyond it, :class:`ServerBusyError` (HTTP 503) tells the client to
retry, instead of letting latency and memory grow without limit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.errors import ShortlistError
from shortlist.text import clean_text

if TYPE_CHECKING:
    from shortlist.encoder import Encoder

__all__ = ["BatcherStats", "EmbeddingBatcher", "ServerBusyError"]

logger = logging.getLogger(__name__)

Matrix = np.ndarray[Any, np.dtype[np.float32]]


class ServerBusyError(ShortlistError, RuntimeError):
    """The embedding queue is full; the client should retry shortly (HTTP 503 with ``Retry-After``)."""


@dataclass
class BatcherStats:
    """Counters of an :class:`EmbeddingBatcher` (read them for ``/health``)."""

    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, float]:
        """The counters plus the mean batch size, as JSON-ready data."""
        mean = self.texts / self.batches if self.batches else 0.0
        return {
            "requests": self.requests,
            "texts": self.texts,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
            "mean_batch": round(mean, 2),
            "rejected": self.rejected,
        }


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[tuple[Matrix, list[int]]]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.texts)


class EmbeddingBatcher:
    """Embed texts for many concurrent callers with few, large encoder calls.

    Args:
        encoder: The shared encoder.
        max_batch: Most texts in one encoder call (default 64). A request with more texts is split into
            consecutive slices of this size, so it cannot hold the encoder for long while others wait.
        max_wait_ms: How long the worker waits for more requests before running a batch that is not full
            (default 0: never wait; batches still form while the previous one runs).
        max_queue: Most texts waiting at once (default 8192); beyond it :meth:`embed` raises
            :class:`ServerBusyError`.
        enabled: ``False`` embeds each request on its own, one after the other (the one-at-a-time baseline the
            benchmark compares against).

    Call :meth:`embed` from the event loop that serves the requests; the worker starts on first use.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        max_queue: int = 8192,
        enabled: bool = True,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            msg = (
                f"max_batch and max_queue must be >= 1 and max_wait_ms >= 0; got max_batch={max_batch}, "
                f"max_queue={max_queue}, max_wait_ms={max_wait_ms}."
            )
            raise ValueError(msg)
        self.encoder = encoder
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.max_queue = int(max_queue)
        self.enabled = bool(enabled)
        self.stats = BatcherStats()
        self._queue: deque[_Job] = deque()
        self._queued_texts = 0
        self._in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shortlist-encode")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public
    @property
    def queued(self) -> int:
        """Texts waiting for the encoder (not counting the batch running now)."""
        return self._queued_texts

    async def embed(self, texts: Sequence[str]) -> tuple[Matrix, list[int]]:
        """Embed ``texts`` (already checked: non-empty strings) and count their word pieces.

        Returns:
            The ``(len(texts), dimension)`` float32 matrix, equal to ``encoder.embed_documents(texts)``, and each
            text's word-piece count (``[CLS]``/``[SEP]`` not counted).

        Raises:
            ServerBusyError: if the queue already holds ``max_queue`` texts.
            InputError: if the encoder refuses a text.
        """
        texts = list(texts)
        if not texts:
            return np.empty((0, self.encoder.dimension), dtype=np.float32), []
        if self._queued_texts + self._in_flight + len(texts) > self.max_queue + self.max_batch:
            self.stats.rejected += 1
            msg = (
                f"The server is busy ({self._queued_texts} texts waiting for the encoder, limit {self.max_queue}). "
                "Retry in a moment, or send fewer texts per request."
            )
            raise ServerBusyError(msg)
        self.stats.requests += 1
        loop = asyncio.get_running_loop()
        if not self.enabled:
            self._in_flight += len(texts)
            try:
                result = await loop.run_in_executor(self._executor, self._encode, texts)
            finally:
                self._in_flight -= len(texts)
            self.stats.batches += 1
            self.stats.texts += len(texts)
            self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
            return result
        self._ensure_worker(loop)
        parts: list[Matrix] = []
        counts: list[int] = []
        for start in range(0, len(texts), self.max_batch):
            piece = texts[start : start + self.max_batch]
            job = _Job(piece, loop.create_future())
            self._queue.append(job)
            self._queued_texts += job.size
            assert self._wake is not None
            self._wake.set()
            vectors, piece_counts = await job.future
            parts.append(vectors)
            counts.extend(piece_counts)
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)), counts

    async def aclose(self) -> None:
        """Stop the worker and the encoder thread (pending requests get an error)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(ServerBusyError("The server is shutting down."))
        self._queued_texts = 0
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ worker
    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run(), name="shortlist-batcher")

    def _encode(self, texts: list[str]) -> tuple[Matrix, list[int]]:
        vectors = self.encoder.embed_documents(texts)
        prepared = [clean_text(t) if self.encoder.clean else t for t in texts]
        counts = [len(e.ids) for e in self.encoder.tokenizer.encode_batch(prepared, add_special_tokens=False)]
        return vectors, counts

    def _take_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        total = 0
        while self._queue:
            job = self._queue[0]
            if job.future.done():  # the client went away
                self._queue.popleft()
                self._queued_texts -= job.size
                continue
            if batch and total + job.size > self.max_batch:
                break
            self._queue.popleft()
            self._queued_texts -= job.size
            batch.append(job)
            total += job.size
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.max_wait > 0 and self._queued_texts < self.max_batch:
                await asyncio.sleep(self.max_wait)
            batch = self._take_batch()
            if not batch:
                continue
            texts = [t for job in batch for t in job.texts]
            self._in_flight = len(texts)
            try:
                try:
                    vectors, counts = await loop.run_in_executor(self._executor, self._encode, texts)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if len(batch) == 1:
                        _settle(batch[0], exc)
                        continue
                    # One request's text spoiled the batch: run each request on its own so only it fails.
                    logger.debug("batch of %d requests failed (%s); retrying them one by one", len(batch), exc)
                    for job in batch:
                        try:
                            _settle(job, await loop.run_in_executor(self._executor, self._encode, job.texts))
                        except asyncio.CancelledError:
                            raise
                        except Exception as job_exc:
                            _settle(job, job_exc)
                    continue
                self.stats.batches += 1
                self.stats.texts += len(texts)
                self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
                start = 0
                for job in batch:
                    _settle(job, (vectors[start : start + job.size], counts[start : start + job.size]))
                    start += job.size
            finally:
                self._in_flight = 0


def _settle(job: _Job, outcome: tuple[Matrix, list[int]] | BaseException) -> None:
    if job.future.done():
        return
    if isinstance(outcome, BaseException):
        job.future.set_exception(outcome)
    else:
        job.future.set_result(outcome)
