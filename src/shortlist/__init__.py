"""shortlist: a small, offline retrieval layer on one shared all-MiniLM-L6-v2 encoder.

The LangChain and LlamaIndex adapters live in :mod:`shortlist.langchain` and :mod:`shortlist.llama_index` and are
not imported here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from shortlist import _offline
from shortlist.encoder import Encoder
from shortlist.errors import (
    ConfigError,
    EmbeddingModelMismatchError,
    InputError,
    MissingDependencyError,
    ModelNotFoundError,
    ShortlistError,
    StoreError,
    TextTooLongError,
)
from shortlist.text import clean_text, split_text

_offline.quiet()  # telemetry switches off (as defaults) before shortlist imports onnxruntime, chromadb or HF

if TYPE_CHECKING:  # type checkers see the real classes; at run time they load on first use (below)
    from shortlist.prefilter import Prefilter
    from shortlist.store import ChunkStore

#: Exported lazily (PEP 562): ``import shortlist`` does not import chromadb; the first use of the name does.
_LAZY = {"ChunkStore": "shortlist.store", "Prefilter": "shortlist.prefilter"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'shortlist' has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


try:
    __version__ = version("shortlist")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "ChunkStore",
    "ConfigError",
    "EmbeddingModelMismatchError",
    "Encoder",
    "InputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "Prefilter",
    "ShortlistError",
    "StoreError",
    "TextTooLongError",
    "__version__",
    "clean_text",
    "split_text",
]
