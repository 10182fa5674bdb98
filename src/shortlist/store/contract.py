"""The model contract of a collection: one model, one dimension, normalised vectors, the cosine space.

A collection made by shortlist records in its metadata the model name, the vector dimension and the normalisation
(``shortlist:model``, ``shortlist:dimension``, ``shortlist:normalized``, plus ``shortlist:version``).
:func:`open_collection` creates or opens one and refuses, with
:class:`~shortlist.errors.EmbeddingModelMismatchError`, a collection of another model or dimension, one not made by
shortlist that holds vectors, or one in another space; :func:`check_vectors` refuses vectors that do not fit.
Vectors of two models are never mixed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from shortlist.errors import ConfigError, EmbeddingModelMismatchError, InputError, StoreError
from shortlist.store.client import chroma_errors

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = [
    "META_DIMENSION",
    "META_MODEL",
    "META_NORMALIZED",
    "META_VERSION",
    "STORE_VERSION",
    "ModelContract",
]

META_MODEL = "shortlist:model"
META_DIMENSION = "shortlist:dimension"
META_NORMALIZED = "shortlist:normalized"
META_VERSION = "shortlist:version"
STORE_VERSION = 1


@dataclass(frozen=True)
class ModelContract:
    """What a collection's vectors are: the model that made them and their dimension (always L2-normalised).

    Attributes:
        model_name: The encoder's model name.
        dimension: The vectors' dimension.
    """

    model_name: str
    dimension: int

    def expected_metadata(self) -> dict[str, Any]:
        """The collection metadata that records this contract."""
        return {
            META_MODEL: self.model_name,
            META_DIMENSION: self.dimension,
            META_NORMALIZED: True,
            META_VERSION: STORE_VERSION,
        }

    def open_collection(self, client: ClientAPI, name: str) -> Collection:
        """Create or open collection ``name`` and check that it keeps this contract.

        Raises:
            ConfigError: if Chroma refuses the name.
            EmbeddingModelMismatchError: if the collection holds another model's vectors or uses another space.
            StoreError: if Chroma cannot be reached or refuses.
        """
        try:
            col = client.get_or_create_collection(
                name,
                metadata=self.expected_metadata(),
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        except chroma_errors() as exc:
            msg = f"Chroma refused to open collection {name!r}: {exc}"
            raise (ConfigError(msg) if "name" in str(exc).lower() else StoreError(msg)) from exc
        except Exception as exc:
            msg = f"Could not reach Chroma to open collection {name!r}: {exc}"
            raise StoreError(msg) from exc
        meta = dict(col.metadata or {})
        if META_MODEL not in meta:
            if col.count() > 0:
                msg = (
                    f"Collection {name!r} was not created by shortlist (its metadata does not record a model), and "
                    "it holds vectors of an unknown model. Use another collection name."
                )
                raise EmbeddingModelMismatchError(msg)
            col.modify(metadata={**meta, **self.expected_metadata()})
            meta = dict(col.metadata or {})
        stored_model, stored_dim = meta.get(META_MODEL), meta.get(META_DIMENSION)
        if stored_model != self.model_name or stored_dim != self.dimension:
            msg = (
                f"Collection {name!r} holds vectors of {stored_model!r} (dimension {stored_dim}), but this encoder is "
                f"{self.model_name!r} (dimension {self.dimension}). shortlist never mixes two models: open it with "
                "that model, or use another collection name."
            )
            raise EmbeddingModelMismatchError(msg)
        space = space_of(col)
        if space not in (None, "cosine"):
            msg = f"Collection {name!r} uses the {space!r} space; shortlist needs 'cosine'. Use another collection."
            raise EmbeddingModelMismatchError(msg)
        return col

    def check_vectors(self, embeddings: Any, n: int, collection: str) -> NDArray[np.float32]:
        """``embeddings`` as a float32 ``(n, dimension)`` array of finite numbers.

        Raises:
            InputError: for another shape, or values that are not finite numbers.
            EmbeddingModelMismatchError: for vectors of another dimension.
        """
        try:
            vectors = np.asarray(embeddings, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            msg = f"embeddings must be a 2-D array of numbers: {exc}"
            raise InputError(msg) from exc
        if vectors.ndim != 2 or vectors.shape[0] != n:
            msg = f"embeddings must have shape ({n}, {self.dimension}), got {vectors.shape}."
            raise InputError(msg)
        if vectors.shape[1] != self.dimension:
            msg = (
                f"Vectors of dimension {vectors.shape[1]} do not fit collection {collection!r} (dimension "
                f"{self.dimension}, model {self.model_name!r}). Embed with that model."
            )
            raise EmbeddingModelMismatchError(msg)
        if not np.all(np.isfinite(vectors)):
            msg = "embeddings contain NaN or infinite values."
            raise InputError(msg)
        return vectors


def space_of(col: Collection) -> str | None:
    """The distance space of a collection (``None`` when it records none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # chromadb: "legacy embedding function config"
        conf = getattr(col, "configuration", None) or {}
    hnsw = conf.get("hnsw") if isinstance(conf, Mapping) else None
    if isinstance(hnsw, Mapping) and hnsw.get("space"):
        return str(hnsw["space"])
    meta = col.metadata or {}
    space = meta.get("hnsw:space")
    return str(space) if space else None
