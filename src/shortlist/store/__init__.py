"""ChunkStore: text chunks, their vectors and metadata in one Chroma collection (``shortlist.store``).

Where the collection lives (exactly one of these; the code path is the same for all):

- an embedded database in a folder (Chroma ``PersistentClient``), the default: ``path`` or ``SHORTLIST_CHROMA_PATH``
  or ``<SHORTLIST_HOME>/chroma``;
- a Chroma server (``chroma run``; ``HttpClient(host, port)``);
- memory only (:meth:`ChunkStore.in_memory`), each store in its own private Chroma database, for tests and
  notebooks;
- any Chroma client you built yourself (``client=``).

What the collection records: it is created with the cosine space, and its metadata holds the model name, the vector
dimension and the normalisation (``shortlist:model``, ``shortlist:dimension``, ``shortlist:normalized``). Opening it
with an encoder of another model or dimension raises :class:`~shortlist.errors.EmbeddingModelMismatchError`:
vectors of two models are never mixed.

Ids are stable: :func:`chunk_id` hashes (source id, chunk index, text), so writing the same chunk twice changes
nothing.

Metadata in Chroma: each chunk carries ``source`` (its document's id) and ``chunk`` (its index in the document), plus
the user's metadata. Chroma 1.x stores ``str``, ``int``, ``float``, ``bool`` and non-empty lists of one of those
types. Everything else that JSON can express (``None``, nested dicts, empty or mixed lists, tuples of mixed
types) is stored as a JSON string and its key listed in the reserved key ``_sl_json``; reading restores the value
exactly (a tuple comes back as a list). NumPy scalars and arrays become Python numbers and lists. Values JSON cannot
express (dates, bytes, sets, objects) are refused with :class:`~shortlist.errors.InputError` before anything is
written: convert them to ``str`` first. Keys starting with ``_sl_`` or ``chroma:`` are reserved. A user key
``chunk`` (or a ``source`` that differs from the document id) is kept under ``original_chunk`` (``original_source``).
Filters (``where``) work on natively stored values; a JSON-encoded value can only be matched as its JSON string.

The package, one module per job (everything public is importable from ``shortlist.store`` as before):

- :mod:`~shortlist.store.client`: the one place that opens Chroma clients (:func:`open_client`,
  :func:`~shortlist.store.client.list_collections`, :func:`~shortlist.store.client.drop_collection`);
- :mod:`~shortlist.store.contract`: the model contract (model, dimension, cosine space) checked on opening;
- :mod:`~shortlist.store.metadata`: reserved keys, :func:`sanitize_metadata` / :func:`restore_metadata`, the field
  registry behind ``where`` checks;
- :mod:`~shortlist.store.accounting`: the count cache and the corpus's token tally;
- :mod:`~shortlist.store.records`: :class:`ChunkRecord`, :class:`StoredChunk`, :func:`chunk_id`;
- :mod:`~shortlist.store.reading` and :mod:`~shortlist.store.chunkstore`: :class:`ChunkStore`, its paged reads and
  batched writes.

Example:
    ```python
    from shortlist import ChunkStore, Encoder

    store = ChunkStore.in_memory("demo")
    print(store.count(), store.model_name, store.dimension)
    # 0 sentence-transformers/all-MiniLM-L6-v2 384
    ```
"""

from __future__ import annotations

from shortlist.config import DEFAULT_COLLECTION as DEFAULT_COLLECTION
from shortlist.store.chunkstore import ChunkStore
from shortlist.store.client import open_client
from shortlist.store.contract import META_DIMENSION as META_DIMENSION
from shortlist.store.contract import META_MODEL as META_MODEL
from shortlist.store.contract import META_NORMALIZED as META_NORMALIZED
from shortlist.store.contract import META_VERSION as META_VERSION
from shortlist.store.contract import STORE_VERSION as STORE_VERSION
from shortlist.store.metadata import INTERNAL_KEYS, RESERVED_KEYS, restore_metadata, sanitize_metadata
from shortlist.store.metadata import KEY_CHUNK as KEY_CHUNK
from shortlist.store.metadata import KEY_JSON as KEY_JSON
from shortlist.store.metadata import KEY_SOURCE as KEY_SOURCE
from shortlist.store.metadata import KEY_TITLE as KEY_TITLE
from shortlist.store.metadata import KEY_TOKENS as KEY_TOKENS
from shortlist.store.metadata import META_FIELDS as META_FIELDS
from shortlist.store.reading import READ_PAGE as _READ_PAGE  # noqa: F401  (the old module's name)
from shortlist.store.records import ChunkRecord, StoredChunk, chunk_id

# The names the single module ``shortlist.store`` listed; the constants above stay importable from here too.
__all__ = [
    "INTERNAL_KEYS",
    "RESERVED_KEYS",
    "ChunkRecord",
    "ChunkStore",
    "StoredChunk",
    "chunk_id",
    "open_client",
    "restore_metadata",
    "sanitize_metadata",
]

# The class is documented under the path users import it from, as before the split. (Not the dataclasses: their
# string annotations are resolved in their own module's namespace by typing.get_type_hints.)
ChunkStore.__module__ = __name__
