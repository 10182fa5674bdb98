"""shortlist: a small, offline retrieval layer on one shared all-MiniLM-L6-v2 encoder.

The LangChain and LlamaIndex adapters live in :mod:`shortlist.langchain` and :mod:`shortlist.llama_index` and are
not imported here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("shortlist")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "ConfigError",
    "EmbeddingModelMismatchError",
    "Encoder",
    "InputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ShortlistError",
    "StoreError",
    "TextTooLongError",
    "__version__",
    "clean_text",
    "split_text",
]
