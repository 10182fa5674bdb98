"""The shared all-MiniLM-L6-v2 encoder.

One :class:`Encoder` per (model, device, backend) per process, loaded lazily and shared by everything: the
pre-filter, the LangChain and LlamaIndex adapters, the CLI and the server. Vectors are float32 NumPy arrays, L2
normalised, so a dot product is the cosine similarity.

Example:
    ```python
    from shortlist import Encoder

    enc = Encoder.shared()
    docs = enc.embed_documents(["The cat sits on the mat.", "Stock markets fell today."])
    query = enc.embed_query("Where is the cat?")
    print(docs.shape, (docs @ query).round(2))
    # (2, 384) [0.61 0.01]
    ```
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from shortlist.batching import MicroBatcher
from shortlist.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_QUERY_CACHE_SIZE,
    Backend,
    LongTextPolicy,
    chosen_backend,
    resolve_backend,
    resolve_device,
)
from shortlist.errors import ConfigError, InputError, ModelNotFoundError, TextTooLongError
from shortlist.model import ModelSource, read_config, resolve_model
from shortlist.text import clean_text, load_tokenizer, token_windows

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Encoding, Tokenizer

__all__ = ["Encoder", "EncoderBackend", "loaded_models"]

logger = logging.getLogger(__name__)

_LONG_TEXT_POLICIES = ("split", "truncate", "error")
Vector = NDArray[np.float32]
Matrix = NDArray[np.float32]


class EncoderBackend(Protocol):
    """What a backend does: turn texts that fit the model's window into L2-normalised float32 vectors."""

    def encode(
        self, texts: Sequence[str], batch_size: int, *, tokenized: Sequence[Encoding | None] | None = None
    ) -> Matrix:
        """Encode ``texts`` (each within the model's window) to an ``(n, dimension)`` float32 array, L2 normalised.

        ``tokenized`` may give, per text, the encoder's tokenisation of it without special tokens (``None`` where
        there is none); a backend that tokenises with the same tokenizer may use it instead of tokenising again.
        """
        ...


class _TorchBackend:
    """sentence-transformers on PyTorch: the reference implementation."""

    def __init__(self, model: SentenceTransformer) -> None:
        self.model = model

    def encode(
        self, texts: Sequence[str], batch_size: int, *, tokenized: Sequence[Encoding | None] | None = None
    ) -> Matrix:
        del tokenized  # sentence-transformers tokenises with its own (transformers) tokenizer
        out = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


_registry_lock = threading.Lock()
_shared: dict[tuple[str, str, str], Encoder] = {}
_loads: list[tuple[str, str, str]] = []


def loaded_models() -> list[tuple[str, str, str]]:
    """Every model load this process has done, as ``(location, device, backend)``, in order.

    With :meth:`Encoder.shared` each triple appears once however many adapters use it.
    """
    with _registry_lock:
        return list(_loads)


class Encoder:
    """A lazily loaded, thread-safe sentence encoder (all-MiniLM-L6-v2 by default).

    Args:
        model: A local sentence-transformers folder, a model id, or an already-loaded ``SentenceTransformer``.
            ``None`` (default): ``SHORTLIST_MODEL``, else the packaged all-MiniLM-L6-v2 weights (offline).
        device: Torch device (``"cpu"``, ``"cuda"``...). Default: ``SHORTLIST_DEVICE``, else ``"cpu"``.
        backend: ``"torch"`` (sentence-transformers, the reference), ``"onnx"`` or ``"onnx-int8"``.
            Default: ``SHORTLIST_BACKEND``, else :func:`~shortlist.config.default_backend` (``"onnx"`` for a BERT
            model with mean pooling on the CPU, ``"torch"`` otherwise; if the default ``"onnx"`` cannot be
            exported or loaded, a warning is logged and ``"torch"`` is used).
        long_text: What to do with a text longer than the model's window (256 word pieces with ``[CLS]`` and
            ``[SEP]``): ``"split"`` (default) embeds consecutive windows and mean-pools them (weighted by their
            token counts), then re-normalises; ``"truncate"`` keeps the first window and warns once per encoder;
            ``"error"`` raises :class:`~shortlist.errors.TextTooLongError`. Never silent truncation.
        clean: Apply :func:`shortlist.text.clean_text` (NFKC, white space, control characters) before embedding.
            Default ``True``; the text is otherwise unchanged, so vectors match sentence-transformers on clean text.
        batch_size: Default batch size of :meth:`embed_documents` (32).
        query_cache_size: How many query vectors the LRU cache keeps (1024; 0 turns it off).
        batch_queries: Combine :meth:`embed_query` calls that arrive from several threads at once into one forward
            pass (:class:`~shortlist.batching.MicroBatcher`: a lone query runs at once, queries that arrive while a
            pass runs share the next one). ``None`` (default): on for ``"torch"`` and ``"onnx"``, whose vectors do
            not depend on the batch (within 1e-6); off for ``"onnx-int8"``, whose activations are quantised per
            batch, so a query's vector would change (cosine down to ~0.985) with the queries it happened to share
            a pass with.

    Empty or white-space-only text (after cleaning) is refused with :class:`~shortlist.errors.InputError`: its
    vector would be that of ``[CLS] [SEP]``, which matches everything a little and nothing well.
    """

    def __init__(
        self,
        model: str | Path | SentenceTransformer | None = None,
        *,
        device: str | None = None,
        backend: Backend | str | None = None,
        long_text: LongTextPolicy = "split",
        clean: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        query_cache_size: int = DEFAULT_QUERY_CACHE_SIZE,
        batch_queries: bool | None = None,
    ) -> None:
        self._st_model: SentenceTransformer | None = None
        self._backend_defaulted = False
        if model is not None and not isinstance(model, str | Path):
            # An already-loaded SentenceTransformer (duck-typed so that importing torch is not needed here).
            if not hasattr(model, "encode") or not hasattr(model, "tokenizer"):
                msg = f"model must be a path, a model id or a SentenceTransformer, got {type(model).__name__}."
                raise ConfigError(msg)
            self._st_model = model
            card = getattr(model, "model_card_data", None)
            name = getattr(card, "base_model", None) or getattr(card, "model_name", None) or "custom"
            self.source = ModelSource(name=str(name), path=None, origin="argument")
            self.device = str(getattr(model, "device", "cpu"))
            self.backend_name: Backend = "torch"
            if backend not in (None, "torch"):
                msg = "An already-loaded SentenceTransformer runs on the 'torch' backend only."
                raise ConfigError(msg)
        else:
            self.source = resolve_model(model)
            self.device = resolve_device(device)
            # Chosen by nobody: the default may fall back to torch if the ONNX file cannot be made or loaded.
            self._backend_defaulted = chosen_backend(backend) is None
            self.backend_name = resolve_backend(
                backend, device=self.device, model_dir=self.source.path, local=self.source.is_local
            )
        if self.backend_name != "torch" and not self.device.startswith("cpu"):
            msg = f"Backend {self.backend_name!r} runs on the CPU only; got device={self.device!r}."
            raise ConfigError(msg)
        if long_text not in _LONG_TEXT_POLICIES:
            msg = f"long_text must be one of {_LONG_TEXT_POLICIES}, got {long_text!r}."
            raise ConfigError(msg)
        self.long_text: LongTextPolicy = long_text
        self.clean = clean
        self.batch_size = _check_batch_size(batch_size)
        self._cache_size = max(0, int(query_cache_size))
        self._cache: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._infer_lock = threading.Lock()
        self._backend: EncoderBackend | None = None
        self._tokenizer: Tokenizer | None = None
        self._warned_truncation = False
        self._config_max_tokens: int | None = None
        if self._st_model is not None:
            self._backend = _TorchBackend(self._st_model)
        if batch_queries is None:
            batch_queries = self.backend_name != "onnx-int8"
        self._query_batcher: MicroBatcher[tuple[str, LongTextPolicy], Vector] | None = (
            MicroBatcher(self._encode_queries, max_batch=self.batch_size) if batch_queries else None
        )

    # ------------------------------------------------------------------ construction and loading
    @classmethod
    def shared(
        cls,
        model: str | Path | None = None,
        device: str | None = None,
        backend: Backend | str | None = None,
    ) -> Encoder:
        """Return this process's encoder for (model, device, backend), creating it on first call.

        Loading the weights still waits for the first embedding. Every adapter uses this by default, so one
        process holds one copy of the weights.
        """
        source = resolve_model(model)
        dev = resolve_device(device)
        key = (source.location, dev, resolve_backend(backend, device=dev, model_dir=source.path, local=source.is_local))
        with _registry_lock:
            enc = _shared.get(key)
            if enc is None:
                enc = cls(model, device=device, backend=backend)
                _shared[key] = enc
            return enc

    @property
    def model_name(self) -> str:
        """The model's name, as recorded in collections (e.g. ``sentence-transformers/all-MiniLM-L6-v2``)."""
        return self.source.name

    @property
    def is_loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._backend is not None

    def load(self) -> Encoder:
        """Load the weights now instead of on first use (thread-safe; a no-op once loaded). Returns ``self``."""
        self._get_backend()
        return self

    def _get_backend(self) -> EncoderBackend:
        backend = self._backend
        if backend is not None:
            return backend
        with self._load_lock:
            if self._backend is None:
                self._backend = self._make_backend()
                with _registry_lock:
                    _loads.append((self.source.location, self.device, self.backend_name))
                logger.info("Loaded %s (%s, %s)", self.source.location, self.backend_name, self.device)
            return self._backend

    def _make_backend(self) -> EncoderBackend:
        if self.backend_name == "torch":
            self._st_model = _load_sentence_transformer(self.source, self.device)
            return _TorchBackend(self._st_model)
        if self.source.path is None:
            msg = f"Backend {self.backend_name!r} needs a local model folder; {self.source.name!r} is a hub id."
            raise ConfigError(msg)
        from shortlist.onnx_backend import OnnxBackend  # the ONNX path never imports torch

        try:
            return OnnxBackend(
                self.source.path,
                quantized=self.backend_name == "onnx-int8",
                tokenizer=self.tokenizer,
                max_seq_length=self.max_tokens,
            )
        except Exception as exc:
            if not self._backend_defaulted:
                raise
            # The user did not ask for ONNX: a failed export (read-only cache, missing package...) must not turn
            # a working setup into an error. Say why, once, and run the reference backend instead.
            logger.warning("The default 'onnx' backend is unavailable (%s); using 'torch' instead.", exc)
            self.backend_name = "torch"
            self._st_model = _load_sentence_transformer(self.source, self.device)
            return _TorchBackend(self._st_model)

    # ------------------------------------------------------------------ model facts
    @property
    def tokenizer(self) -> Tokenizer:
        """The model's fast tokenizer (``tokenizers.Tokenizer``), with padding and truncation turned off."""
        if self._tokenizer is None:
            if self.source.path is not None and (self.source.path / "tokenizer.json").is_file():
                self._tokenizer = load_tokenizer(self.source.path)
            else:
                from tokenizers import Tokenizer

                self._get_backend()
                assert self._st_model is not None  # a hub id or a loaded model always runs on torch
                tok = Tokenizer.from_str(self._st_model.tokenizer.backend_tokenizer.to_str())
                tok.no_padding()
                tok.no_truncation()
                self._tokenizer = tok
        return self._tokenizer

    @property
    def max_tokens(self) -> int:
        """The model's window in word pieces, ``[CLS]`` and ``[SEP]`` included (256 for all-MiniLM-L6-v2)."""
        if self._st_model is not None and self._st_model.max_seq_length is not None:
            return int(self._st_model.max_seq_length)
        if self.source.path is not None:
            if self._config_max_tokens is None:  # read once: this is on every query's path
                value = read_config(self.source.path / "sentence_bert_config.json").get("max_seq_length")
                self._config_max_tokens = value if isinstance(value, int) else 0
            if self._config_max_tokens:
                return self._config_max_tokens
        self._get_backend()
        length = self._st_model.max_seq_length if self._st_model is not None else None
        if length is None:
            msg = f"{self.source.name!r} does not say how many tokens it reads (no max_seq_length)."
            raise ConfigError(msg)
        return int(length)

    @property
    def max_text_tokens(self) -> int:
        """Word pieces of text that fit in one window: :attr:`max_tokens` minus ``[CLS]`` and ``[SEP]`` (254)."""
        return self.max_tokens - 2

    @property
    def dimension(self) -> int:
        """Length of the vectors (384 for all-MiniLM-L6-v2)."""
        if self._st_model is not None:
            return int(_st_dimension(self._st_model))
        if self.source.path is not None:
            value = read_config(self.source.path / "1_Pooling" / "config.json").get("word_embedding_dimension")
            if isinstance(value, int):
                return value
        self._get_backend()
        assert self._st_model is not None
        return int(_st_dimension(self._st_model))

    def count_tokens(self, text: str) -> int:
        """Number of word pieces the model sees for ``text`` after cleaning, ``[CLS]``/``[SEP]`` not counted."""
        prepared = self._prepare_one(text, "text")
        return len(self.tokenizer.encode(prepared, add_special_tokens=False).ids)

    # ------------------------------------------------------------------ embedding
    def embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        *,
        long_text: LongTextPolicy | None = None,
    ) -> Matrix:
        """Embed documents.

        Args:
            texts: A list (or other sequence) of strings. A bare ``str`` is refused: wrap it in a list.
            batch_size: Texts per forward pass (default: the encoder's, 32).
            long_text: Override the encoder's long-text policy for this call.

        Returns:
            An ``(len(texts), dimension)`` float32 array of L2-normalised vectors.

        Raises:
            InputError: if ``texts`` is not a sequence of strings, or one is empty after cleaning; the message
                names the position.
            TextTooLongError: if a text is over the window and the policy is ``"error"``.
        """
        return self._embed_documents(texts, batch_size, long_text, None)

    def embed_documents_with_counts(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        *,
        long_text: LongTextPolicy | None = None,
    ) -> tuple[Matrix, list[int]]:
        """:meth:`embed_documents` and each text's word-piece count, from the one tokenisation both need.

        The counts are :meth:`count_tokens`'s (after cleaning, ``[CLS]``/``[SEP]`` not counted, the whole text even
        when it is embedded window by window): what a server reports (Ollama's ``prompt_eval_count``, OpenAI's
        ``usage``) without tokenising the texts a second time.

        Returns:
            The ``(len(texts), dimension)`` float32 vectors and the ``len(texts)`` counts.

        Raises:
            InputError: as :meth:`embed_documents`.
            TextTooLongError: as :meth:`embed_documents`.
        """
        counts: list[int] = []
        vectors = self._embed_documents(texts, batch_size, long_text, counts)
        return vectors, counts

    def _embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None,
        long_text: LongTextPolicy | None,
        counts: list[int] | None,
    ) -> Matrix:
        if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
            msg = f"embed_documents expects a list of strings, got {type(texts).__name__}" + (
                ": wrap a single text in a list, or use embed_query." if isinstance(texts, str) else "."
            )
            raise InputError(msg)
        size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        prepared = [self._prepare_one(t, f"texts[{i}]") for i, t in enumerate(texts)]
        if not prepared:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self._encode_prepared(prepared, size, long_text or self.long_text, counts)

    def embed_query(self, text: str, *, long_text: LongTextPolicy | None = None) -> Vector:
        """Embed one query; results are kept in a small LRU cache (a repeated question costs nothing).

        Returns:
            A ``(dimension,)`` float32 L2-normalised vector (a copy: changing it does not touch the cache).

        Raises:
            InputError: if ``text`` is not a non-empty string (a list is refused: use embed_documents).
        """
        if not isinstance(text, str):
            hint = ": use embed_documents for several texts." if isinstance(text, list | tuple) else "."
            msg = f"embed_query expects a str, got {type(text).__name__}{hint}"
            raise InputError(msg)
        prepared = self._prepare_one(text, "query")
        policy = long_text or self.long_text
        key = (prepared, policy)
        if self._cache_size:
            with self._cache_lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    return hit.copy()
        if self._query_batcher is not None:
            vector = self._query_batcher.submit(key)
        else:
            vector = self._encode_prepared([prepared], 1, policy)[0]
        if self._cache_size:
            with self._cache_lock:
                self._cache[key] = vector
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector.copy()

    def _encode_queries(self, items: list[tuple[str, LongTextPolicy]]) -> list[Vector]:
        """The query batcher's batch function: prepared queries (grouped by long-text policy) to their vectors."""
        out: list[Vector | None] = [None] * len(items)
        for policy in dict.fromkeys(p for _, p in items):
            idx = [i for i, (_, p) in enumerate(items) if p == policy]
            vectors = self._encode_prepared([items[i][0] for i in idx], len(idx), policy)
            for row, i in enumerate(idx):
                out[i] = vectors[row]
        return out  # type: ignore[return-value]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts, in [-1, 1]."""
        vectors = self.embed_documents([a, b])
        return float(np.clip(vectors[0] @ vectors[1], -1.0, 1.0))

    def _prepare_one(self, text: object, where: str) -> str:
        if text is None:
            msg = f"{where} is None: expected a string."
            raise InputError(msg)
        if not isinstance(text, str):
            msg = f"{where} is a {type(text).__name__}: expected a string."
            raise InputError(msg)
        prepared = clean_text(text) if self.clean else text
        if not prepared.strip():
            msg = f"{where} is empty or white space only: there is nothing to embed."
            raise InputError(msg)
        return prepared

    def _encode_prepared(
        self, texts: list[str], batch_size: int, policy: LongTextPolicy, counts: list[int] | None = None
    ) -> Matrix:
        """The prepared texts' vectors; each text's word-piece count is appended to ``counts`` when given."""
        tok = self.tokenizer
        limit = self.max_text_tokens
        encodings = tok.encode_batch(texts, add_special_tokens=False)
        if counts is not None:
            counts.extend(len(encoding.ids) for encoding in encodings)
        # The backend may reuse these word pieces, unless someone has set padding or truncation on the shared
        # tokenizer (then its encodings are not the plain text's, and the backend tokenises again).
        reusable = tok.padding is None and tok.truncation is None
        pieces: list[str] = []
        tokenized: list[Encoding | None] = []  # each piece's word pieces, for the backend to reuse
        owners: list[int] = []  # which input each piece belongs to
        weights: list[int] = []
        for i, (text, encoding) in enumerate(zip(texts, encodings, strict=True)):
            count = len(encoding.ids)
            if count <= limit:
                pieces.append(text)
                tokenized.append(encoding if reusable else None)
                owners.append(i)
                weights.append(max(count, 1))
                continue
            if policy == "error":
                msg = (
                    f"Text {i} has {count} word pieces; the model reads {limit} at most. Split it "
                    "(shortlist.text.split_text) or use long_text='split' or 'truncate'."
                )
                raise TextTooLongError(msg)
            windows = token_windows(text, limit, 0, tok)
            if policy == "truncate":
                windows = windows[:1]
                if not self._warned_truncation:
                    self._warned_truncation = True
                    msg = (
                        f"Text {i} has {count} word pieces; only the first {limit} are embedded "
                        "(long_text='truncate'). Further truncations by this encoder are not reported."
                    )
                    warnings.warn(msg, UserWarning, stacklevel=4)
            for window in windows:
                window_encoding = tok.encode(window, add_special_tokens=False)
                pieces.append(window)
                tokenized.append(window_encoding if reusable else None)
                owners.append(i)
                weights.append(len(window_encoding.ids))
        backend = self._get_backend()
        with self._infer_lock:
            vectors = backend.encode(pieces, batch_size, tokenized=tokenized)
        if len(pieces) == len(texts):
            return vectors
        pooled = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        np.add.at(pooled, np.asarray(owners), vectors * np.asarray(weights, dtype=np.float32)[:, None])
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalised

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded"
        return f"Encoder(model={self.model_name!r}, backend={self.backend_name!r}, device={self.device!r}, {state})"


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        msg = f"batch_size must be a positive int, got {batch_size!r}."
        raise ConfigError(msg)
    return batch_size


def _st_dimension(model: SentenceTransformer) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = getter()
    if dimension is None:
        msg = "The SentenceTransformer does not report its embedding dimension."
        raise ConfigError(msg)
    return int(dimension)


def _load_sentence_transformer(source: ModelSource, device: str) -> SentenceTransformer:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "The 'torch' backend needs sentence-transformers: `pip install sentence-transformers`."
        raise ConfigError(msg) from exc
    with _quiet_transformers():
        if source.path is not None:
            # A local folder: never ask the hub for anything.
            return SentenceTransformer(str(source.path), device=device, local_files_only=True)
        try:
            return SentenceTransformer(source.name, device=device)
        except OSError as exc:
            msg = (
                f"Could not load model {source.name!r}: it is not a local folder, and fetching it from the hub "
                f"failed (offline?). Point SHORTLIST_MODEL at a local sentence-transformers folder. ({exc})"
            )
            raise ModelNotFoundError(msg) from exc


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar while loading (quiet by default), then restore it."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
