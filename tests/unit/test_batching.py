"""The one micro-batcher: its sync and async fronts share one queue, one worker rule and one set of counters."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shortlist.batching import BatcherBusyError, MicroBatcher
from shortlist.errors import ConfigError


def _gated() -> tuple[list[list[int]], threading.Event, threading.Event, object]:
    calls: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def fn(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            started.set()
            release.wait(10)
        if -1 in items:
            raise ValueError("bad item")
        return [x * 10 for x in items]

    return calls, started, release, fn


def test_async_requests_join_one_batch_and_large_ones_are_sliced() -> None:
    calls: list[list[int]] = []

    def fn(items: list[int]) -> list[int]:
        calls.append(list(items))
        return [x + 1 for x in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(fn, max_batch=4)

    async def run() -> list[list[int]]:
        try:
            return await asyncio.gather(*(batcher.asubmit([i]) for i in range(6)), batcher.asubmit(range(10, 19)))
        finally:
            batcher.close()

    results = asyncio.run(run())
    assert results[:6] == [[i + 1] for i in range(6)] and results[6] == list(range(11, 20))
    assert sorted(x for call in calls for x in call) == [*range(6), *range(10, 19)]
    assert max(len(c) for c in calls) == 4  # requests made ready together share a call
    stats = batcher.stats()
    assert (stats.requests, stats.items, stats.batches, stats.largest) == (7, 15, len(calls), 4)
    assert len(calls) < 7


def test_sync_and_async_callers_share_the_queue_and_the_counters() -> None:
    calls, started, release, fn = _gated()
    batcher: MicroBatcher[int, int] = MicroBatcher(fn, max_batch=8)  # type: ignore[arg-type]

    async def run() -> list[list[int]]:
        return await asyncio.gather(batcher.asubmit([1, 2]), batcher.asubmit([3]))

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, 0)  # a thread leads: the pass runs on its thread
        assert started.wait(10)
        async_part = pool.submit(asyncio.run, run())  # queue behind it
        while batcher.queued < 3:
            threading.Event().wait(0.001)
        release.set()
        assert first.result(10) == 0
        assert async_part.result(10) == [[10, 20], [30]]
    batcher.close()
    assert calls == [[0], [1, 2, 3]]  # the waiting async requests ran as one batch, handed over by the thread
    assert batcher.stats().requests == 3 and batcher.stats().items == 4 and batcher.stats().batches == 2


def test_errors_reach_every_caller_of_the_batch_unless_isolated() -> None:
    def fn(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item")
        return items

    async def run(batcher: MicroBatcher[int, int]) -> list[object]:
        try:
            return await asyncio.gather(*(batcher.asubmit([x]) for x in (1, -1, 2)), return_exceptions=True)
        finally:
            batcher.close()

    shared = asyncio.run(run(MicroBatcher(fn)))
    assert all(isinstance(o, ValueError) for o in shared)
    isolated = asyncio.run(run(MicroBatcher(fn, isolate_errors=True)))
    assert isolated[0] == [1] and isinstance(isolated[1], ValueError) and isolated[2] == [2]


def test_full_queue_is_refused_and_counted() -> None:
    calls, started, release, fn = _gated()
    # Room for max_queue items waiting beyond a running batch of max_batch: 1 running + 1 waiting here.
    batcher: MicroBatcher[int, int] = MicroBatcher(fn, max_batch=1, max_queue=1, busy_message="busy {queued}/{limit}")  # type: ignore[arg-type]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, 0)
        assert started.wait(10)
        waiting = pool.submit(batcher.submit, 1)
        while batcher.queued < 1:
            threading.Event().wait(0.001)
        with pytest.raises(BatcherBusyError, match="busy 1/1"):
            batcher.submit(2)
        release.set()
        assert first.result(10) == 0 and waiting.result(10) == 10
    assert batcher.stats().rejected == 1 and batcher.stats().requests == 2
    assert batcher.submit(3) == 30  # room again once the queue drained


def test_close_fails_waiting_requests_and_the_batcher_still_works_after() -> None:
    calls, started, release, fn = _gated()
    batcher: MicroBatcher[int, int] = MicroBatcher(fn)  # type: ignore[arg-type]

    async def run() -> list[object]:
        first = asyncio.ensure_future(batcher.asubmit([0]))
        await asyncio.to_thread(started.wait, 10)
        second = asyncio.ensure_future(batcher.asubmit([1]))
        await asyncio.sleep(0.01)
        batcher.close()
        release.set()
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(run())
    assert first == [0] and isinstance(second, BatcherBusyError) and "shutting down" in str(second)
    assert batcher.submit(4) == 40


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"max_batch": 0}, "max_batch"), ({"max_wait_ms": -1}, "max_wait_ms"), ({"max_queue": 0}, "max_queue")],
)
def test_bad_settings(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        MicroBatcher(lambda items: items, **kwargs)  # type: ignore[arg-type]
