"""The ONNX backends of :class:`shortlist.Encoder`: this module RUNS the exported graph to embed texts.

``backend="onnx"`` runs the float32 graph, ``"onnx-int8"`` the dynamically quantised one. :mod:`shortlist.onnx_export`
makes the graph it runs (exported once from the local weights and cached; that one-off export is the only step that
needs torch), and :mod:`shortlist.onnx_session` sets up the ONNX Runtime session both use. Run time needs
``onnxruntime``, ``tokenizers`` and NumPy only: this module never imports torch, transformers or
sentence-transformers, so a process that only embeds queries starts in a fraction of a second.

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` and returns mean-pooled, L2-normalised
sentence vectors. Texts are tokenised with the model's fast tokenizer (truncation at the model's window, no fixed
padding), sorted by length and padded per batch to the longest text in it, so short texts never pay for long ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from shortlist.errors import MissingDependencyError
from shortlist.onnx_export import export_onnx
from shortlist.onnx_session import DISABLED_FUSIONS, ENV_THREADS, default_threads, make_session

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

__all__ = ["DISABLED_FUSIONS", "ENV_THREADS", "OnnxBackend", "default_threads", "make_session"]

logger = logging.getLogger(__name__)


class OnnxBackend:
    """Encode texts with an exported ONNX copy of a sentence-transformers model.

    Args:
        model_dir: The sentence-transformers folder the ONNX file is exported from (and keyed by).
        quantized: Use the dynamically quantised int8 graph instead of the float32 one.
        tokenizer: The model's fast tokenizer; a copy is configured here (truncation at ``max_seq_length``, no
            padding), so the caller's tokenizer is left as it is.
        max_seq_length: The model's window in word pieces, ``[CLS]`` and ``[SEP]`` included (256).
        threads: Intra-op threads (default: :func:`default_threads`).

    Raises:
        MissingDependencyError: if ``onnxruntime`` is not installed, or the file must be exported and the export
            needs a package that is missing.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        quantized: bool,
        tokenizer: Tokenizer,
        max_seq_length: int,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            msg = "The ONNX backends need onnxruntime: `pip install 'shortlist[onnx]'` (or use backend='torch')."
            raise MissingDependencyError(msg) from exc
        from tokenizers import Tokenizer

        self.path = export_onnx(model_dir, quantized=quantized)
        self.quantized = quantized
        self.max_seq_length = int(max_seq_length)
        tok = Tokenizer.from_str(tokenizer.to_str())
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer = tok
        self.threads = threads or default_threads()
        self._session = make_session(self.path, self.threads)
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._output_name = self._session.get_outputs()[0].name
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        logger.debug("ONNX session on %s with %d threads", self.path, self.threads)

    def encode(
        self, texts: Sequence[str], batch_size: int, *, tokenized: Sequence[Encoding | None] | None = None
    ) -> NDArray[np.float32]:
        """Encode ``texts`` to an ``(n, dimension)`` float32 array of L2-normalised vectors, in input order.

        Texts are sorted by token count and padded per batch; the result is put back in the caller's order.
        ``tokenized``: per text, its encoding by the same tokenizer without special tokens (or ``None``), from
        the caller's token count; only the special tokens and the truncation are then added (5 us instead of
        40 us of tokenising again for a query).
        """
        n = len(texts)
        out = np.empty((n, self.dimension), dtype=np.float32)
        if n == 0:
            return out
        encodings, lengths = self._tokenize(texts, tokenized)
        order = np.argsort(lengths, kind="stable")
        step = max(1, int(batch_size))
        for start in range(0, n, step):
            idx = order[start : start + step]
            width = int(lengths[idx[-1]])
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, j in enumerate(idx):
                enc = encodings[j]
                if tokenized is not None and tokenized[j] is not None:
                    # Special tokens and truncation are added per batch, so a large call never holds two
                    # tokenised copies of every text at once.
                    enc = self._tokenizer.post_process(enc)
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = 1
            out[idx] = self._run(ids, mask)
        # The graph normalises already; re-normalising costs nothing and guards the contract.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: NDArray[np.float32] = (out / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
        return normalised

    def _tokenize(
        self, texts: Sequence[str], tokenized: Sequence[Encoding | None] | None
    ) -> tuple[list[Encoding], NDArray[np.int64]]:
        """Each text's encoding and its length with special tokens, in input order.

        A given (``tokenized``) encoding is returned as it is, without special tokens: :meth:`encode` post-processes
        it when its batch is built, and its length here already counts the special tokens and the truncation.
        """
        tok = self._tokenizer
        if tokenized is None:
            encodings = tok.encode_batch(list(texts))
            return encodings, np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        if len(tokenized) != len(texts):
            msg = f"tokenized has {len(tokenized)} entries for {len(texts)} texts."
            raise ValueError(msg)
        missing = [i for i, e in enumerate(tokenized) if e is None]
        fresh = dict(zip(missing, tok.encode_batch([texts[i] for i in missing]), strict=True)) if missing else {}
        special = tok.num_special_tokens_to_add(False)
        out: list[Encoding] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for i, e in enumerate(tokenized):
            if e is None:
                out.append(fresh[i])
                lengths[i] = len(fresh[i].ids)
            else:
                out.append(e)
                lengths[i] = min(len(e.ids) + special, self.max_seq_length)
        return out, lengths

    def _run(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        result = self._session.run([self._output_name], feed)
        return np.asarray(result[0], dtype=np.float32)

    def __repr__(self) -> str:
        kind = "int8" if self.quantized else "fp32"
        return f"OnnxBackend({kind}, threads={self.threads}, path={str(self.path)!r})"
