"""Errors raised by shortlist.

Every error derives from :class:`ShortlistError` and from the built-in exception it specialises, so callers can
catch either. Messages say what went wrong and what to do next.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EmbeddingModelMismatchError",
    "EmptyCollectionWarning",
    "InputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ShortlistError",
    "StoreError",
    "TextTooLongError",
]


class ShortlistError(Exception):
    """Base class of every error raised by shortlist."""


class ConfigError(ShortlistError, ValueError):
    """An argument or setting has a value shortlist cannot use."""


class InputError(ShortlistError, ValueError):
    """A text, vector or document given to shortlist is not usable (empty, wrong type, wrong shape)."""


class TextTooLongError(InputError):
    """A text is longer than the model's window and the long-text policy is ``"error"``."""


class ModelNotFoundError(ShortlistError, FileNotFoundError):
    """The embedding model could not be found locally (and shortlist does not download by default)."""


class MissingDependencyError(ShortlistError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class StoreError(ShortlistError, RuntimeError):
    """The vector store (Chroma) refused an operation or could not be reached."""


class EmbeddingModelMismatchError(StoreError, ValueError):
    """A collection was built with another embedding model than the one in use."""


class EmptyCollectionWarning(UserWarning):
    """A search ran on an empty collection (a mistyped name?); the message names the collections that exist."""
