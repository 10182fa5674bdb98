"""The state every route shares: the encoder, its batcher, the request limits and the collections' pre-filters.

Routes get it with ``service: ServiceDep`` (a FastAPI dependency on ``app.state.service``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import Depends, Request

from shortlist.batching import EmbeddingBatcher
from shortlist.config import ChromaServer, location_option
from shortlist.errors import ConfigError, ShortlistError
from shortlist.server.errors import ApiError, api_error
from shortlist.text import clean_text

if TYPE_CHECKING:
    from shortlist.encoder import Encoder
    from shortlist.prefilter import Prefilter

__all__ = ["MINILM_ALIASES", "OLLAMA_NAME", "Limits", "Service", "ServiceDep", "get_service", "warm"]

logger = logging.getLogger(__name__)

#: Ollama's tags of all-MiniLM-L6-v2 and the model's own names, all accepted as ``model``.
MINILM_ALIASES = (
    "all-minilm",
    "all-minilm:latest",
    "all-minilm:l6-v2",
    "all-minilm:22m",
    "all-minilm-l6-v2",
    "all-minilm-l6-v2:latest",
    "sentence-transformers/all-minilm-l6-v2",
)
OLLAMA_NAME = "all-minilm:latest"

Matrix = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for.

    Attributes:
        max_body_bytes: Largest request body (default 4 MiB); larger is 413.
        max_inputs: Most texts in one embedding request, pairs in one batch similarity (default 512); more is 400.
        max_text_chars: Longest text in characters (default 16384); longer is 400. Texts over the model's window
            (254 word pieces) are embedded window by window and mean-pooled, unless the request says
            ``truncate: false``.
        max_csv_rows: Most rows in an uploaded CSV file (default 10000).
        max_queue: Most texts waiting for the encoder (default 8192); beyond it requests get 503.
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_inputs: int = 512
    max_text_chars: int = 16_384
    max_csv_rows: int = 10_000
    max_queue: int = 8192

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"Limits.{name} must be a positive int, got {value!r}."
                raise ConfigError(msg)


class Service:
    """The state the routes share: encoder, batcher, limits, the database and the collections' pre-filters.

    Args:
        encoder: The one encoder of every route.
        batcher: Combines concurrent embedding requests into encoder batches.
        limits: Bounds on one request.
        db: The Chroma database that ``/api/search`` reads: an embedded folder or a Chroma server.
        collection: The collection searched when a request names none.
        prefilter: An already-open pre-filter to serve as its collection.
    """

    def __init__(
        self,
        encoder: Encoder,
        batcher: EmbeddingBatcher,
        limits: Limits,
        db: Path | ChromaServer,
        collection: str,
        prefilter: Prefilter | None,
    ) -> None:
        self.encoder = encoder
        self.batcher = batcher
        self.limits = limits
        self.db = db
        self.collection = collection
        self._prefilters: dict[str, Prefilter] = {}
        if prefilter is not None:
            self._prefilters[prefilter.store.name] = prefilter
        self._given = prefilter  # the caller's: close() leaves it open
        self._lock = threading.Lock()
        names = {encoder.model_name.lower(), encoder.model_name.rsplit("/", 1)[-1].lower()}
        if encoder.model_name.rsplit("/", 1)[-1].lower() == "all-minilm-l6-v2":
            names.update(MINILM_ALIASES)
        self.model_names = frozenset(names)
        self.public_name = "all-minilm" if "all-minilm" in names else encoder.model_name

    def close(self) -> None:
        """Close the pre-filters this service opened (at shutdown): an embedded folder is free for others again."""
        with self._lock:
            opened = [pf for pf in self._prefilters.values() if pf is not self._given]
            self._prefilters = {} if self._given is None else {self._given.store.name: self._given}
        for pf in opened:
            pf.close()

    # ---------------------------------------------------------------- checks
    def check_model(self, model: str | None, param: str = "model") -> None:
        """Refuse (404) a model name this server does not embed with; ``None`` or ``""`` means its own."""
        if model is None or model == "" or model.lower() in self.model_names:
            return
        msg = (
            f"model {model!r} not found: this server embeds with {self.encoder.model_name}; "
            f"use model={self.public_name!r} (or any of {', '.join(sorted(self.model_names))})."
        )
        raise ApiError(404, msg, param=param)

    def check_dimensions(self, dimensions: int | None) -> None:
        """Refuse (400) a ``dimensions`` other than the model's."""
        if dimensions is not None and dimensions != self.encoder.dimension:
            msg = (
                f"dimensions={dimensions} is not available: {self.encoder.model_name} gives "
                f"{self.encoder.dimension}-dimensional vectors only; leave it out or send {self.encoder.dimension}."
            )
            raise ApiError(400, msg, param="dimensions")

    def check_texts(self, texts: Sequence[str], param: str, *, strict_window: bool = False) -> list[str]:
        """Refuse (400) too many texts, a non-string, an empty text, an over-long one; return them unchanged."""
        limit = self.limits.max_inputs
        if len(texts) > limit:
            msg = f"{param} has {len(texts):,} texts; the limit is {limit:,} per request: send them in batches."
            raise ApiError(400, msg, param=param)
        window = self.encoder.max_text_tokens
        for i, text in enumerate(texts):
            where = f"{param}[{i}]" if len(texts) > 1 or param.endswith("s") else param
            if not isinstance(text, str):
                msg = f"{where} is a {type(text).__name__}: send text strings."
                raise ApiError(400, msg, param=param)
            if len(text) > self.limits.max_text_chars:
                msg = (
                    f"{where} has {len(text):,} characters; the limit is {self.limits.max_text_chars:,}. "
                    "Split long documents (shortlist index does) before embedding."
                )
                raise ApiError(400, msg, param=param)
            prepared = clean_text(text) if self.encoder.clean else text
            if not prepared.strip():
                msg = f"{where} is empty or white space only: there is nothing to embed."
                raise ApiError(400, msg, param=param)
            if strict_window:
                count = self.encoder.count_tokens(text)
                if count > window:
                    msg = (
                        f"{where} has {count} word pieces; the model reads {window} at most and truncate=false "
                        "was asked. Send truncate=true (long texts are then embedded window by window and "
                        "mean-pooled) or split the text."
                    )
                    raise ApiError(400, msg, param=param)
        return list(texts)

    # ---------------------------------------------------------------- embedding
    async def embed(self, texts: Sequence[str]) -> tuple[Matrix, list[int]]:
        """The texts' vectors and word-piece counts, through the batcher (a full queue is 503, bad text 400)."""
        return await self.batcher.embed(texts)

    async def pair_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine similarity of each pair; a text repeated across pairs is embedded once."""
        unique = list(dict.fromkeys(t for pair in pairs for t in pair))
        vectors, _ = await self.embed(unique)
        row = {t: i for i, t in enumerate(unique)}
        left = vectors[[row[a] for a, _ in pairs]]
        right = vectors[[row[b] for _, b in pairs]]
        scores = np.clip(np.einsum("ij,ij->i", left, right), -1.0, 1.0)
        return [float(s) for s in scores]

    # ---------------------------------------------------------------- collections
    def store_kwargs(self) -> dict[str, Any]:
        """``path=...`` or ``host=..., port=...``: the arguments that open the database's collections."""
        if isinstance(self.db, ChromaServer):
            return {"host": self.db.host, "port": self.db.port}
        return {"path": self.db}

    def collection_sizes(self) -> dict[str, int]:
        """The database's collections with their chunk counts (``{}`` before there is a database).

        Raises:
            StoreError: if the database cannot be read (a Chroma server that is down: 503).
        """
        from shortlist.store import ChunkStore

        return ChunkStore.list_collections(**self.store_kwargs())

    def prefilter(self, name: str | None) -> Prefilter:
        """The pre-filter of collection ``name`` (default: the server's), opened once; 404 if there is none."""
        name = name or self.collection
        with self._lock:
            found = self._prefilters.get(name)
            if found is not None:
                return found
            sizes = self.collection_sizes()
            if name not in sizes:
                have = f" (it has: {', '.join(sizes)})" if sizes else ""
                msg = (
                    f"No collection {name!r} in {self.db}{have}. Build it first: "
                    f"shortlist index PATH --collection {name} {location_option(self.db)}"
                )
                raise ApiError(404, msg, param="collection")
            from shortlist.prefilter import Prefilter

            try:
                found = Prefilter(name, **self.store_kwargs(), encoder=self.encoder)
            except ShortlistError as exc:
                server = self.db if isinstance(self.db, ChromaServer) else None
                raise api_error(exc, param="collection", server=server) from exc
            self._prefilters[name] = found
            return found


def warm(service: Service) -> None:
    """Build the default collection's keyword index and hybrid calibration before the first search needs them."""
    try:
        prefilter = service.prefilter(None)
    except ApiError:  # no such collection (yet): nothing to warm
        return
    except ShortlistError as exc:  # a Chroma server that is not up yet: serve anyway (searches answer 503 until it is)
        logger.warning("shortlist serve starts without its store: %s", exc)
        return
    try:
        prefilter.calibration()
    except Exception:  # a warm-up must not stop the server: the first hybrid search will say what is wrong
        logger.exception("Could not build the keyword index and hybrid calibration of %r at start-up", prefilter)


def get_service(request: Request) -> Service:
    """The app's :class:`Service` (a FastAPI dependency)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
