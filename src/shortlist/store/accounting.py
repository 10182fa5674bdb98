"""What a store remembers about its collection between requests: the chunk count and the corpus's word pieces.

Chroma counts by scanning (milliseconds at 100k chunks) and has no sum, so the store keeps both figures here:
:class:`CountCache` holds the last count with the time it was read (searches accept one a few seconds old; the
store's own writes clear it), :class:`TokenTally` holds the corpus's word pieces, read once by paging over every
chunk and then kept up to date by the store's writes and deletes (or dropped, to be read again, when a write fails
half-way).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["CountCache", "TokenTally"]


class CountCache:
    """The collection's chunk count as last read, and when (``time.monotonic``)."""

    def __init__(self) -> None:
        self._value: tuple[int, float] | None = None

    def get(self, max_age: float) -> int | None:
        """The cached count if it was read at most ``max_age`` seconds ago (never for ``max_age <= 0``)."""
        if max_age <= 0:
            return None
        cached = self._value
        if cached is not None and time.monotonic() - cached[1] <= max_age:
            return cached[0]
        return None

    def put(self, count: int) -> None:
        """Remember ``count``, read now."""
        self._value = (count, time.monotonic())

    def clear(self) -> None:
        """Forget the count (after a write)."""
        self._value = None


class TokenTally:
    """The corpus's word pieces: unknown until read once, then adjusted by each write (callers hold the lock)."""

    def __init__(self) -> None:
        self._total: int | None = None

    @property
    def known(self) -> bool:
        """Whether the total has been read (only then do writes need to adjust it)."""
        return self._total is not None

    def total(self, read: Callable[[], Iterable[int]]) -> int:
        """The total, computed from ``read()`` (every chunk's token count) the first time."""
        if self._total is None:
            self._total = sum(read())
        return self._total

    def adjust(self, delta: int) -> None:
        """Add ``delta`` (tokens written minus tokens replaced or deleted) to a known total."""
        if self._total is not None:
            self._total += delta

    def forget(self) -> None:
        """Drop the total (a write failed half-way): the next :meth:`total` reads it again."""
        self._total = None
