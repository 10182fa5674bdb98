"""Combine concurrent single-item calls into batches: many threads asking one query each share forward passes.

:class:`MicroBatcher` wraps a batch function (``list of items -> list of results``). A caller that finds the
batch function idle runs it at once on its own item (no added wait, so a lone query costs what it cost before).
Callers that arrive while a pass is running queue up; when the pass ends, the oldest of them runs the whole queue
(up to ``max_batch`` items) as one batch, and the others get their results from it. No background thread: the
callers themselves take turns running batches, and a caller never runs a batch after its own result is ready.

An optional ``max_wait_ms`` lets the caller that starts a batch wait up to that long for more items first (at most
until ``max_batch`` are queued); the default 0 relies on the queue that forms behind a running pass, which is
where batching pays.

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

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from shortlist.errors import ConfigError

__all__ = ["BatcherStats", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class BatcherStats:
    """Counts since the batcher was made.

    Attributes:
        items: Items submitted and answered.
        batches: Calls of the batch function.
        largest: The largest batch run.
    """

    items: int
    batches: int
    largest: int

    @property
    def mean_batch(self) -> float:
        """Items per batch on average (1.0 when nothing was combined)."""
        return self.items / self.batches if self.batches else 0.0


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "event", "item", "lead", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.event = threading.Event()
        self.done = False
        self.lead = False
        self.result: R | None = None
        self.error: BaseException | None = None


class MicroBatcher(Generic[T, R]):
    """Run ``fn`` on batches of items submitted one at a time from many threads.

    Args:
        fn: The batch function: takes a list of items, returns one result per item, in order.
        max_batch: Most items per call of ``fn``.
        max_wait_ms: How long the caller that starts a batch waits for more items before running it (0: no wait).

    Raises:
        ConfigError: if ``max_batch`` < 1 or ``max_wait_ms`` < 0.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = 32, max_wait_ms: float = 0.0) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            msg = f"max_batch must be a positive int, got {max_batch!r}."
            raise ConfigError(msg)
        if max_wait_ms < 0:
            msg = f"max_wait_ms must be >= 0, got {max_wait_ms!r}."
            raise ConfigError(msg)
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: list[_Slot[T, R]] = []
        self._busy = False
        self._items = 0
        self._batches = 0
        self._largest = 0

    def submit(self, item: T) -> R:
        """Return ``fn([item, ...])``'s result for ``item``, computed alone or in a batch with concurrent items.

        Raises:
            BaseException: whatever ``fn`` raised for the batch holding ``item``.
        """
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            if self._busy:
                self._arrived.notify()
            else:
                self._busy = True
                slot.lead = True
        if not slot.lead:
            slot.event.wait()
            if not slot.lead:  # answered by another caller's batch
                return self._outcome(slot)
        self._run_batch()
        return self._outcome(slot)

    def stats(self) -> BatcherStats:
        """Items, batches and the largest batch so far."""
        with self._lock:
            return BatcherStats(self._items, self._batches, self._largest)

    # ------------------------------------------------------------------------------------------------ internals
    def _run_batch(self) -> None:
        """Run one batch from the head of the queue (this caller's slot is its first item), then hand over."""
        with self._lock:
            if self.max_wait > 0 and len(self._pending) < self.max_batch:
                deadline = time.monotonic() + self.max_wait
                while len(self._pending) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._arrived.wait(left)
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
        try:
            results = list(self._fn([s.item for s in batch]))
            if len(results) != len(batch):
                msg = f"The batch function returned {len(results)} results for {len(batch)} items."
                raise RuntimeError(msg)
        except BaseException as exc:  # every caller of the batch gets the error
            for s in batch:
                s.error = exc
        else:
            for s, r in zip(batch, results, strict=True):
                s.result = r
        with self._lock:
            self._items += len(batch)
            self._batches += 1
            self._largest = max(self._largest, len(batch))
            if self._pending:
                nxt = self._pending[0]
                nxt.lead = True
                nxt.event.set()  # the oldest waiting caller runs the next batch
            else:
                self._busy = False
        for s in batch:
            s.done = True
            s.lead = False
            s.event.set()

    @staticmethod
    def _outcome(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]
