"""EXPORT the packaged sentence-transformers weights to ONNX (fp32 and dynamic int8), cached per weights hash.

This module makes the graph; it does not embed anything. :mod:`shortlist.onnx_backend` runs the graph for the
:class:`~shortlist.Encoder` (and calls :func:`export_onnx` when the cached file is missing); both run it in the
session of :mod:`shortlist.onnx_session`, which is how the export checks its graph before caching it.

The ONNX files are made here, from the local weights, by the project's own code: nothing is downloaded. The
export runs once (on first use of an ONNX backend, or by ``shortlist export``) and the result is kept in
``<user cache>/onnx/<first 16 hex digits of the weights' sha256>/v<EXPORT_VERSION>/``:

- ``model.onnx``: the BERT encoder + mean pooling over the attention mask + L2 normalisation, exported with
  PyTorch's TorchScript exporter (``torch.onnx.export(..., dynamo=False)``: no ``onnxscript`` needed), then fused
  by ONNX Runtime's transformer optimiser (``EmbedLayerNormalization``, ``Attention``; not
  ``SkipLayerNormalization`` or ``BiasGelu``, whose CPU kernels are slower: see :func:`_fuse`). It reproduces
  sentence-transformers to cosine >= 0.99999.
- ``model-int8.onnx``: the same graph with the MatMul and Attention weights dynamically quantised to int8
  (per channel; activations quantised at run time) by ``onnxruntime.quantization``; embeddings stay float32.

Only the export imports torch and transformers, and only when the file is missing: checking for and loading a
cached file needs onnxruntime and the standard library. Files are written to a temporary name in the same folder
and moved into place with :func:`os.replace` (:mod:`shortlist._io`), under a lock file, so two processes
exporting at once neither corrupt the cache nor both do the work.

Example:
    ```python
    from shortlist.onnx_export import export_onnx

    path = export_onnx(quantized=True)   # the first call takes ~15 s; later calls return at once
    print(path.name)
    # model-int8.onnx
    ```
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shortlist._io import atomic_path, atomic_write, file_lock
from shortlist.config import user_cache_dir
from shortlist.errors import ConfigError, MissingDependencyError, ModelNotFoundError
from shortlist.model import read_config
from shortlist.onnx_session import make_session

__all__ = ["EXPORT_VERSION", "export_onnx", "onnx_cache_dir", "onnx_model_path"]

logger = logging.getLogger(__name__)

#: Bump when the exported graph changes: files of another version are re-exported, never reused.
EXPORT_VERSION = 2
_FP32_NAME = "model.onnx"
_INT8_NAME = "model-int8.onnx"
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUT = "sentence_embedding"


def _weights_file(model_dir: Path) -> Path:
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        weights = model_dir / "pytorch_model.bin"
    if not weights.is_file():
        msg = f"{model_dir} has no model.safetensors or pytorch_model.bin: it is not a model folder ONNX can export."
        raise ModelNotFoundError(msg)
    return weights


def _resolve_dir(model_dir: str | os.PathLike[str] | None) -> Path:
    if model_dir is None:
        from shortlist.model import resolve_model

        source = resolve_model(None)
        if source.path is None:
            msg = f"Model {source.name!r} is a hub id: ONNX export needs a local sentence-transformers folder."
            raise ConfigError(msg)
        return source.path
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        msg = f"Model folder {str(path)!r} does not exist."
        raise ModelNotFoundError(msg)
    return path.resolve()


def onnx_cache_dir(model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the cache folder for a model's ONNX files: ``<user cache>/onnx/<weights sha256[:16]>/v<version>``.

    Args:
        model_dir: The sentence-transformers folder (default: the resolved default model, i.e. the packaged weights).
    """
    from shortlist.model import weights_sha256

    path = _resolve_dir(model_dir)
    digest = weights_sha256(_weights_file(path))
    return user_cache_dir() / "onnx" / digest[:16] / f"v{EXPORT_VERSION}"


def onnx_model_path(model_dir: str | os.PathLike[str] | None = None, *, quantized: bool = False) -> Path:
    """Where the exported file for ``model_dir`` lives (it may not exist yet)."""
    return onnx_cache_dir(model_dir) / (_INT8_NAME if quantized else _FP32_NAME)


def export_onnx(
    model_dir: str | os.PathLike[str] | None = None,
    *,
    quantized: bool = False,
    force: bool = False,
) -> Path:
    """Export (if needed) the model to ONNX and return the path of the cached file.

    Args:
        model_dir: A local sentence-transformers folder (BERT-style encoder with mean pooling). Default: the
            resolved default model (``SHORTLIST_MODEL``, else the packaged all-MiniLM-L6-v2 weights).
        quantized: Return the dynamically quantised int8 file (``model-int8.onnx``) instead of the float32 one
            (``model.onnx``). The int8 file is made from the float32 one, which is exported first if missing.
        force: Export again even if the cached file exists (it is replaced atomically).

    Returns:
        The path of the ``.onnx`` file in the user cache.

    Raises:
        MissingDependencyError: if the file must be made and ``torch``, ``transformers`` or ``onnx`` is missing.
        ConfigError: if the model's pooling is not mean pooling (only ``backend="torch"`` handles it), or the
            exported graph does not reproduce the PyTorch model.
        ModelNotFoundError: if ``model_dir`` is not a model folder.
    """
    path = _resolve_dir(model_dir)
    # Checked before the cache: the cache is keyed by the weights, and another folder may share them.
    _check_pooling(path)
    target = onnx_model_path(path, quantized=quantized)
    if target.is_file() and not force:
        return target
    # The int8 file is made from the float32 one: export that first, outside the lock (the lock is per open file, so
    # taking it again from a nested call in this process would wait for ever).
    fp32 = export_onnx(path, quantized=False, force=force) if quantized else None
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".export.lock"):
        # Another process may have finished the same export while this one waited for the lock.
        if target.is_file() and not force:
            return target
        started = time.perf_counter()
        if fp32 is not None:
            _quantize(fp32, target)
        else:
            _export_fp32(path, target)
        _write_manifest(target.parent, path)
        logger.info("Exported %s to %s in %.1f s", path, target, time.perf_counter() - started)
    return target


# ---------------------------------------------------------------------------------------------------- internals
def _temp_path(target: Path) -> Path:
    """A scratch file beside ``target`` (never moved into place; the caller removes it)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".raw.onnx.tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


def _check_pooling(model_dir: Path) -> None:
    pooling = read_config(model_dir / "1_Pooling" / "config.json")
    if pooling and not pooling.get("pooling_mode_mean_tokens", False):
        msg = (
            f"{model_dir} does not use mean pooling ({pooling}); the ONNX backends implement mean pooling only. "
            "Use backend='torch' for this model."
        )
        raise ConfigError(msg)
    other = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
    if other:
        msg = (
            f"{model_dir} combines pooling modes {other}; the ONNX backends do mean pooling only: use backend='torch'."
        )
        raise ConfigError(msg)


def _import_export_deps() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        msg = (
            "Exporting the model to ONNX needs torch and transformers (installed with sentence-transformers): "
            "`pip install sentence-transformers`. Only the one-off export needs them."
        )
        raise MissingDependencyError(msg) from exc
    try:
        import onnx  # noqa: F401  (the optimiser and the quantiser need it)
    except ImportError as exc:
        msg = "Exporting the model to ONNX needs the `onnx` package: `pip install 'shortlist[onnx]'`."
        raise MissingDependencyError(msg) from exc
    return torch, transformers


def _export_fp32(model_dir: Path, target: Path) -> None:
    _check_pooling(model_dir)
    torch, transformers = _import_export_deps()
    config = read_config(model_dir / "config.json")
    with _quiet():
        # Eager attention exports the plain MatMul/Softmax pattern that ORT's optimiser fuses into `Attention`.
        bert = transformers.AutoModel.from_pretrained(
            str(model_dir), local_files_only=True, attn_implementation="eager"
        )
    bert.eval()

    class _Pooled(torch.nn.Module):  # type: ignore[misc, name-defined]
        """BERT + mean pooling over the attention mask + L2 normalisation (sentence-transformers' pipeline)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            counts = mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)

    wrapped = _Pooled(bert).eval()
    # A padded sample batch: the traced graph must not specialise on "no padding".
    ids = torch.randint(1000, 5000, (2, 16), dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    types = torch.zeros(2, 16, dtype=torch.long)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in _INPUTS}
    dynamic[_OUTPUT] = {0: "batch"}
    raw = _temp_path(target)
    try:
        with atomic_path(target, suffix=".onnx.tmp") as fused:
            with _quiet(), torch.no_grad():
                torch.onnx.export(
                    wrapped,
                    (ids, mask, types),
                    str(raw),
                    input_names=list(_INPUTS),
                    output_names=[_OUTPUT],
                    dynamic_axes=dynamic,
                    opset_version=_OPSET,
                    do_constant_folding=True,
                    dynamo=False,
                )
            _fuse(
                raw,
                fused,
                num_heads=int(config.get("num_attention_heads", 12)),
                hidden=int(config.get("hidden_size", 384)),
            )
            _verify(fused, wrapped, torch)
    finally:
        raw.unlink(missing_ok=True)


def _fuse(raw: Path, out: Path, *, num_heads: int, hidden: int) -> None:
    """Fuse the embeddings and attention with ORT's transformer optimiser (offline, graph level).

    Residual additions stay ``Add`` + ``LayerNormalization`` and GELU stays unfused (its bias then folds into
    the preceding MatMul): ORT's CPU ``SkipLayerNormalization`` and ``BiasGelu`` kernels are slower than what
    they replace. Measured on 2 cores, int8: passages 53 -> 66/s, query p50 about 12% lower; fp32 a few percent
    faster. The session keeps ORT from fusing them back (:data:`shortlist.onnx_session.DISABLED_FUSIONS`).
    """
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    options.enable_gelu = False
    options.enable_bias_gelu = False
    with _quiet():
        model = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=num_heads,
            hidden_size=hidden,
            opt_level=0,
            use_gpu=False,
            optimization_options=options,
        )
        model.save_model_to_file(str(out))
    logger.debug("ORT fusion: %s", model.get_fused_operator_statistics())


def _verify(path: Path, module: Any, torch: Any) -> None:
    """Run the exported file against the PyTorch module on a padded batch; refuse a graph that drifts."""
    import numpy as np

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (3, 37), generator=gen, dtype=torch.long)
    mask = torch.ones(3, 37, dtype=torch.long)
    mask[1, 20:] = 0
    mask[2, 5:] = 0
    types = torch.zeros(3, 37, dtype=torch.long)
    with torch.no_grad():
        expected = module(ids, mask, types).numpy()
    session = make_session(path, 1)  # the graph the backends will run, ORT's optimisations included
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()})
    cosine = float(np.min(np.sum(np.asarray(got[0]) * expected, axis=1)))
    if cosine < 0.9999:
        msg = f"The exported ONNX graph drifts from PyTorch (min cosine {cosine:.6f}); use backend='torch'."
        raise ConfigError(msg)


def _quantize(fp32: Path, target: Path) -> None:
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        msg = "Quantising the ONNX model needs the `onnx` package: `pip install 'shortlist[onnx]'`."
        raise MissingDependencyError(msg) from exc
    with atomic_path(target, suffix=".onnx.tmp") as tmp, _quiet():
        quantize_dynamic(
            str(fp32),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The embedding tables stay float32: quantising them saves 35 MB but costs fidelity on short text.
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _write_manifest(folder: Path, model_dir: Path) -> None:
    info: dict[str, Any] = {"export_version": EXPORT_VERSION, "source": str(model_dir), "opset": _OPSET}
    with contextlib.suppress(ImportError):
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    with contextlib.suppress(ImportError):
        import torch

        info["torch"] = torch.__version__
    with contextlib.suppress(OSError):
        atomic_write(folder / "manifest.json", json.dumps(info, indent=2))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' and transformers' warnings and progress bars while exporting."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_logging: Any = None
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging
        was_enabled = bool(hf_logging is not None and hf_logging.is_progress_bar_enabled())
        if hf_logging is not None:
            hf_logging.disable_progress_bar()
        # onnxruntime.quantization warns through the root logger (which, with no handler, would configure one).
        root = logging.getLogger()
        guard = logging.NullHandler()
        root.addHandler(guard)
        quiet_loggers = [logging.getLogger(name) for name in ("onnxruntime", "onnx")] + [root]
        levels = [lg.level for lg in quiet_loggers]
        for lg in quiet_loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(quiet_loggers, levels, strict=True):
                lg.setLevel(level)
            root.removeHandler(guard)
            if was_enabled and hf_logging is not None:
                hf_logging.enable_progress_bar()
