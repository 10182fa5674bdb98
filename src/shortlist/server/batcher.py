"""The server's request batcher: :class:`shortlist.batching.EmbeddingBatcher`, the async front of the one batcher.

Kept so that ``from shortlist.server.batcher import EmbeddingBatcher, ServerBusyError`` works as before;
:data:`ServerBusyError` is :class:`shortlist.batching.BatcherBusyError` (HTTP 503 with ``Retry-After``).
"""

from __future__ import annotations

from shortlist.batching import BatcherBusyError, BatcherStats, EmbeddingBatcher

__all__ = ["BatcherStats", "EmbeddingBatcher", "ServerBusyError"]

#: The embedding queue is full (or the server is shutting down); the client should retry shortly.
ServerBusyError = BatcherBusyError
