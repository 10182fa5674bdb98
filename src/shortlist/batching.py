"""Combine concurrent calls into batches: many callers asking for one item each share forward passes.

:class:`MicroBatcher` wraps a batch function (``list of items -> list of results``) and has two fronts on one
queue, one set of counters and one rule for who runs a batch:

- the sync front, :meth:`MicroBatcher.submit` (one item, from any thread: the encoder's queries). A caller that
  finds the batcher idle runs the batch function at once on its own item (no added wait, so a lone query costs
  what it cost before). Callers that arrive while a pass is running queue up; when the pass ends, the oldest of
  them runs the next batch (up to ``max_batch`` items) on its own thread, and the others get their results from it.
  No background thread: the callers take turns, and a caller never runs a batch after its own result is ready.
- the async front, :meth:`MicroBatcher.asubmit` (a request of many items, from an event loop: the server). The
  request waits without holding a thread; its batches run one at a time on the batcher's own worker thread
  (``shortlist-encode``). A request larger than ``max_batch`` is split into consecutive slices, so it cannot
  hold the worker for long while others wait. The queue can be bounded (``max_queue``): beyond it
  :class:`BatcherBusyError` tells the caller to retry instead of letting latency and memory grow without limit.

Only one batch runs at a time, whichever front started it. An optional ``max_wait_ms`` lets the batch that starts
wait up to that long for more items (at most until ``max_batch`` are queued); the default 0 relies on the queue
that forms behind a running pass, which is where batching pays. :class:`EmbeddingBatcher` is the server's async
front for an :class:`~shortlist.encoder.Encoder` (vectors plus word-piece counts per text).

Example:
    ```python
    from concurrent.futures import ThreadPoolExecutor
    from shortlist.batching import MicroBatcher

    batcher = MicroBatcher(lambda items: [x * 2 for x in items], max_batch=16)
    with ThreadPoolExecutor(8) as pool:
        print(list(pool.map(batcher.submit, range(5))))
    # [0, 2, 4, 6, 8]
    ```
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from shortlist.errors import ConfigError, ShortlistError

__all__ = ["BatcherBusyError", "BatcherStats", "EmbeddingBatcher", "MicroBatcher"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Matrix = np.ndarray[Any, np.dtype[np.float32]]


class Embedder(Protocol):
    """What :class:`EmbeddingBatcher` needs of an :class:`~shortlist.encoder.Encoder` (which imports this module)."""

    @property
    def dimension(self) -> int:
        """The vectors' dimension."""
        ...

    def embed_documents_with_counts(self, texts: Sequence[str]) -> tuple[Matrix, list[int]]:
        """The texts' vectors and word-piece counts."""
        ...


class BatcherBusyError(ShortlistError, RuntimeError):
    """The batcher's queue is full (or it is closing); retry shortly (the server answers HTTP 503)."""


@dataclass(frozen=True)
class BatcherStats:
    """Counts since the batcher was made.

    Attributes:
        items: Items answered by a call of the batch function.
        batches: Calls of the batch function that answered their items.
        largest: The largest such call.
        requests: Calls of :meth:`MicroBatcher.submit` / :meth:`MicroBatcher.asubmit` let into the queue.
        rejected: Calls refused because the queue was full.
    """

    items: int
    batches: int
    largest: int
    requests: int = 0
    rejected: int = 0

    @property
    def mean_batch(self) -> float:
        """Items per batch on average (1.0 when nothing was combined)."""
        return self.items / self.batches if self.batches else 0.0

    @property
    def texts(self) -> int:
        """The server's name for :attr:`items` (texts embedded)."""
        return self.items

    @property
    def largest_batch(self) -> int:
        """The server's name for :attr:`largest`."""
        return self.largest

    def as_dict(self) -> dict[str, float]:
        """The counters plus the mean batch size, as JSON-ready data (the server's ``/health``)."""
        return {
            "requests": self.requests,
            "texts": self.items,
            "batches": self.batches,
            "largest_batch": self.largest,
            "mean_batch": round(self.mean_batch, 2),
            "rejected": self.rejected,
        }


class _Job(Generic[T, R]):
    """Items queued together: one sync caller's item, or one slice of an async request."""

    __slots__ = ("error", "event", "future", "items", "lead", "loop", "results")

    def __init__(
        self,
        items: list[T],
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[list[R]] | None = None,
    ) -> None:
        self.items = items
        self.loop = loop
        self.future = future
        self.event = threading.Event() if future is None else None
        self.lead = False
        self.results: list[R] | None = None
        self.error: BaseException | None = None

    def abandoned(self) -> bool:
        """Whether nobody waits for it any more (an async caller that was cancelled)."""
        return self.future is not None and self.future.done()

    def settle(self, outcome: list[R] | BaseException) -> None:
        """Hand the job its results or error and wake its caller (from any thread)."""
        if isinstance(outcome, BaseException):
            self.error = outcome
        else:
            self.results = outcome
        if self.event is not None:
            self.event.set()
            return
        assert self.loop is not None and self.future is not None
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future, outcome)
        except RuntimeError:  # the caller's event loop is closed: nobody is waiting
            pass


def _resolve(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class MicroBatcher(Generic[T, R]):
    """Run ``fn`` on batches of items submitted from many threads (:meth:`submit`) or coroutines (:meth:`asubmit`).

    Args:
        fn: The batch function: takes a list of items, returns one result per item, in order.
        max_batch: Most items per call of ``fn``.
        max_wait_ms: How long a batch that starts waits for more items before running (0: no wait).
        max_queue: Most items waiting beyond the running batch (``None``: no limit); beyond it :meth:`asubmit`
            and :meth:`submit` raise :class:`BatcherBusyError`.
        combine: ``False`` runs each submission in a call of its own (the one-at-a-time baseline).
        isolate_errors: When a call with several submissions fails, run each of them again on its own, so only
            the one that spoils the batch fails (default: every submission in the failed call gets the error).
        busy_message: The :class:`BatcherBusyError` message, with ``{queued}`` (items waiting) and ``{limit}``.

    Raises:
        ConfigError: if ``max_batch`` < 1, ``max_wait_ms`` < 0 or ``max_queue`` < 1.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 32,
        max_wait_ms: float = 0.0,
        max_queue: int | None = None,
        combine: bool = True,
        isolate_errors: bool = False,
        busy_message: str = "The batcher is busy ({queued} items waiting, limit {limit}). Retry in a moment.",
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            msg = f"max_batch must be a positive int, got {max_batch!r}."
            raise ConfigError(msg)
        if max_wait_ms < 0:
            msg = f"max_wait_ms must be >= 0, got {max_wait_ms!r}."
            raise ConfigError(msg)
        if max_queue is not None and max_queue < 1:
            msg = f"max_queue must be >= 1 (or None: no limit), got {max_queue!r}."
            raise ConfigError(msg)
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.combine = combine
        self.isolate_errors = isolate_errors
        self.busy_message = busy_message
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: deque[_Job[T, R]] = deque()
        self._queued = 0  # items in _pending
        self._in_flight = 0  # items in the running batch
        self._busy = False
        self._items = self._batches = self._largest = self._requests = self._rejected = 0
        self._worker: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------------------------------------ fronts
    def submit(self, item: T) -> R:
        """Return ``fn([item, ...])``'s result for ``item``, computed alone or in a batch with concurrent items.

        Raises:
            BatcherBusyError: if the queue is full.
            BaseException: whatever ``fn`` raised for the batch holding ``item``.
        """
        job: _Job[T, R] = _Job([item])
        with self._lock:
            self._admit(1)
            self._requests += 1
            self._push(job)
        if not job.lead:
            assert job.event is not None
            job.event.wait()
            if not job.lead:  # answered by another caller's batch
                return self._outcome(job)[0]
        self._run_batch()
        return self._outcome(job)[0]

    async def asubmit(self, items: Sequence[T]) -> list[R]:
        """Return ``fn``'s results for ``items``, computed on the worker thread in batches with other callers' items.

        A request of more than ``max_batch`` items is queued as consecutive slices of ``max_batch`` (each
        waits for the one before), so others' items run in between.

        Raises:
            BatcherBusyError: if the queue is full, or the batcher is closing.
            BaseException: whatever ``fn`` raised for ``items`` (for a batch they shared, with ``isolate_errors``,
                only for a slice that fails on its own).
        """
        items = list(items)
        if not items:
            return []
        loop = asyncio.get_running_loop()
        with self._lock:
            self._admit(len(items))
            self._requests += 1
        step = self.max_batch if self.combine else len(items)
        out: list[R] = []
        for start in range(0, len(items), step):
            job: _Job[T, R] = _Job(items[start : start + step], loop, loop.create_future())
            with self._lock:
                self._push(job)
            if job.lead:
                # Started from the loop's queue: the requests made ready together with this one join it first.
                loop.call_soon(self._start_worker)
            assert job.future is not None
            out.extend(await job.future)
        return out

    def stats(self) -> BatcherStats:
        """Items, batches, the largest batch, requests and refusals so far."""
        with self._lock:
            return BatcherStats(self._items, self._batches, self._largest, self._requests, self._rejected)

    @property
    def queued(self) -> int:
        """Items waiting (not counting the batch running now)."""
        return self._queued

    def close(self) -> None:
        """Fail every waiting submission with :class:`BatcherBusyError` and stop the worker thread.

        A batch running now finishes; a later :meth:`asubmit` starts a new worker.
        """
        with self._lock:
            waiting = list(self._pending)
            self._pending.clear()
            self._queued = 0
            worker, self._worker = self._worker, None
        for job in waiting:
            job.settle(BatcherBusyError("The server is shutting down."))
        if worker is not None:
            worker.shutdown(wait=False)  # a batch already handed to it still runs (and finds the queue empty)

    # ------------------------------------------------------------------------------------------------ internals
    def _admit(self, n: int) -> None:
        """Refuse ``n`` more items if they do not fit (called with the lock held)."""
        if self.max_queue is not None and self._queued + self._in_flight + n > self.max_queue + self.max_batch:
            self._rejected += 1
            msg = self.busy_message.format(queued=self._queued, limit=self.max_queue)
            raise BatcherBusyError(msg)

    def _push(self, job: _Job[T, R]) -> None:
        """Queue ``job``; it leads (starts the next batch) when nothing runs (called with the lock held)."""
        self._pending.append(job)
        self._queued += len(job.items)
        if self._busy:
            self._arrived.notify()
        else:
            self._busy = True
            job.lead = True

    def _start_worker(self) -> None:
        self._pool().submit(self._run_batch)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shortlist-encode")
            return self._worker

    def _take(self) -> list[_Job[T, R]]:
        """Whole jobs from the head of the queue, up to ``max_batch`` items (the first always; called locked)."""
        if self.max_wait > 0 and self._queued < self.max_batch:
            deadline = time.monotonic() + self.max_wait
            while self._queued < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
        batch: list[_Job[T, R]] = []
        total = 0
        while self._pending:
            job = self._pending[0]
            if job.abandoned():  # the caller went away
                self._pending.popleft()
                self._queued -= len(job.items)
                continue
            if batch and (not self.combine or total + len(job.items) > self.max_batch):
                break
            self._pending.popleft()
            self._queued -= len(job.items)
            batch.append(job)
            total += len(job.items)
        self._in_flight = total
        return batch

    def _call(self, items: list[T]) -> list[R]:
        results = list(self._fn(items))
        if len(results) != len(items):
            msg = f"The batch function returned {len(results)} results for {len(items)} items."
            raise RuntimeError(msg)
        with self._lock:
            self._items += len(items)
            self._batches += 1
            self._largest = max(self._largest, len(items))
        return results

    def _run_batch(self) -> None:
        """Run one batch from the head of the queue on this thread, then hand the next one over."""
        with self._lock:
            batch = self._take()
        outcomes: list[list[R] | BaseException] = []
        if batch:
            try:
                results = self._call([x for job in batch for x in job.items])
            except BaseException as exc:
                if self.isolate_errors and len(batch) > 1 and isinstance(exc, Exception):
                    # One submission spoiled the batch: run each on its own so only it fails.
                    logger.debug("batch of %d submissions failed (%s); retrying them one by one", len(batch), exc)
                    outcomes = [self._call_alone(job.items) for job in batch]
                else:
                    outcomes = [exc] * len(batch)  # every caller of the batch gets the error
            else:
                start = 0
                for job in batch:
                    outcomes.append(results[start : start + len(job.items)])
                    start += len(job.items)
        with self._lock:
            self._in_flight = 0
            nxt = self._pending[0] if self._pending else None
            if nxt is not None:
                nxt.lead = True
            else:
                self._busy = False
        if nxt is not None:  # the oldest waiting caller's batch runs next: on its thread, or on the worker
            if nxt.event is not None:
                nxt.event.set()
            else:
                self._start_worker()
        for job, outcome in zip(batch, outcomes, strict=True):
            job.lead = False
            job.settle(outcome)

    def _call_alone(self, items: list[T]) -> list[R] | BaseException:
        try:
            return self._call(items)
        except Exception as exc:
            return exc

    @staticmethod
    def _outcome(job: _Job[T, R]) -> list[R]:
        if job.error is not None:
            raise job.error
        assert job.results is not None
        return job.results


class EmbeddingBatcher:
    """Embed texts for many concurrent requests of a server with few, large encoder calls (the async front).

    A forward pass of all-MiniLM-L6-v2 over 32 short texts costs little more than over one, so a server that runs
    one request at a time wastes most of the model's throughput. Requests queue in a :class:`MicroBatcher`; its
    worker thread takes everything queued (up to ``max_batch`` texts) into one
    :meth:`Encoder.embed_documents <shortlist.encoder.Encoder.embed_documents>` call and hands each request its
    own rows. While a batch runs, new requests queue up and form the next one, so batches grow with the load and an
    idle server adds no waiting time. A request whose text the encoder refuses fails alone.

    Args:
        encoder: The shared encoder.
        max_batch: Most texts in one encoder call (default 64). A request with more texts is split into
            consecutive slices of this size.
        max_wait_ms: How long a batch that is not full waits for more requests (default 0: never wait).
        max_queue: Most texts waiting at once (default 8192); beyond it :meth:`embed` raises
            :class:`BatcherBusyError` (``shortlist.server.batcher.ServerBusyError``).
        enabled: ``False`` embeds each request on its own, one after the other (the one-at-a-time baseline the
            benchmark compares against).

    Raises:
        ConfigError: (a ``ValueError``) if ``max_batch`` or ``max_queue`` < 1 or ``max_wait_ms`` < 0.
    """

    def __init__(
        self,
        encoder: Embedder,
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
            raise ConfigError(msg)
        self.encoder = encoder
        self.enabled = bool(enabled)
        self.batcher: MicroBatcher[str, tuple[Matrix, int]] = MicroBatcher(
            self._encode,
            max_batch=int(max_batch),
            max_wait_ms=float(max_wait_ms),
            max_queue=int(max_queue),
            combine=self.enabled,
            isolate_errors=True,
            busy_message="The server is busy ({queued} texts waiting for the encoder, limit {limit}). "
            "Retry in a moment, or send fewer texts per request.",
        )

    @property
    def max_batch(self) -> int:
        """Most texts in one encoder call."""
        return self.batcher.max_batch

    @property
    def max_queue(self) -> int:
        """Most texts waiting at once."""
        return int(self.batcher.max_queue or 0)

    @property
    def stats(self) -> BatcherStats:
        """The counters now (``requests``, ``texts``, ``batches``, ``largest_batch``, ``rejected``)."""
        return self.batcher.stats()

    @property
    def queued(self) -> int:
        """Texts waiting for the encoder (not counting the batch running now)."""
        return self.batcher.queued

    async def embed(self, texts: Sequence[str]) -> tuple[Matrix, list[int]]:
        """Embed ``texts`` (already checked: non-empty strings) and count their word pieces.

        Returns:
            The ``(len(texts), dimension)`` float32 matrix, equal to ``encoder.embed_documents(texts)``, and each
            text's word-piece count (``[CLS]``/``[SEP]`` not counted).

        Raises:
            BatcherBusyError: if the queue already holds ``max_queue`` texts.
            InputError: if the encoder refuses a text.
        """
        texts = list(texts)
        if not texts:
            return np.empty((0, self.encoder.dimension), dtype=np.float32), []
        rows = await self.batcher.asubmit(texts)
        return np.stack([v for v, _ in rows]).astype(np.float32, copy=False), [n for _, n in rows]

    async def aclose(self) -> None:
        """Stop the worker thread (waiting requests get a :class:`BatcherBusyError`)."""
        self.batcher.close()

    def _encode(self, texts: list[str]) -> list[tuple[Matrix, int]]:
        # The counts come from the encoder's own tokenisation of the texts: they are not tokenised a second time.
        vectors, counts = self.encoder.embed_documents_with_counts(texts)
        return list(zip(vectors, counts, strict=True))
