"""The ONNX Runtime session every shortlist graph runs in: CPU, thread count, the fusions left out, no spinning.

Both sides of the ONNX path use it: :mod:`shortlist.onnx_backend` runs the encoder's graph in it, and
:mod:`shortlist.onnx_export` checks a freshly exported graph in the same session before it caches the file, so the
check sees what the backends will run (ORT's own optimisations included). This module imports ``onnxruntime`` only
when a session is made, and never torch (the role fastembed's ``onnx_model.py`` plays under its text models).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shortlist._offline import check_onnxruntime
from shortlist.config import ENV_ONNX_THREADS

__all__ = ["DISABLED_FUSIONS", "ENV_THREADS", "default_threads", "make_session"]

ENV_THREADS = ENV_ONNX_THREADS

#: ORT graph fusions the session leaves out. Its CPU ``SkipLayerNormalization`` kernel is slower than the
#: ``Add`` + ``LayerNormalization`` it would replace (it took 15% of the int8 time on passages, the pair 4%),
#: and ``BiasGelu`` slower than ``Gelu`` (its bias then stays in the MatMul before it). The maths is the same:
#: fp32 vectors match to ~1e-6; int8 ones shift slightly (rounding before the dynamic quantisation differs).
#: (An unknown name is ignored by ORT; ``tests/integration/test_onnx.py`` checks the names still work.)
DISABLED_FUSIONS = ("SkipLayerNormFusion", "BiasGeluFusion")


def default_threads() -> int:
    """Threads for one inference: ``SHORTLIST_ONNX_THREADS``, else the physical cores this process may use.

    Hyper-threads share one core's vector units, and a GEMM on both siblings is no faster than on one, so the
    default is the number of physical cores (from ``psutil`` when it is installed), capped by the CPU affinity.
    """
    env = os.environ.get(ENV_THREADS, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        usable = os.cpu_count() or 1
    physical: int | None = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is optional
        physical = None
    return max(1, min(usable, physical or usable))


def make_session(path: Path, threads: int, *, save_optimized: Path | None = None) -> Any:
    """An ONNX Runtime CPU session on ``path``, set up as the backends run it.

    ``save_optimized``: also write the graph ORT optimised there, for inspection (the tests use it).
    """
    check_onnxruntime()  # onnxruntime reads its telemetry switch on first import: see shortlist._offline
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # The pool's threads spin while a run lasts (fast hand-offs between operators) but stop when it returns, so they
    # do not hold a core for milliseconds afterwards while the caller searches Chroma or ranks (an A/B run of
    # benchmarks/e2e_query.py: Chroma's stage 4.8 -> 4.4 ms p50, the query's p99 25 -> 16 ms; the embedding itself
    # no slower). The cost: 8 threads queuing unbatched queries wake the pool each time (int8 ~350 -> 324 q/s).
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if save_optimized is not None:
        options.optimized_model_filepath = str(save_optimized)
    return ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(DISABLED_FUSIONS)
    )
