"""The adapters' import guard: without the framework, importing the adapter names the extra to install.

Each case runs in a fresh interpreter where a meta-path hook makes the framework unimportable (as if it were not
installed), so the real guard in shortlist.langchain / shortlist.llama_index is what answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

_PROBE = textwrap.dedent(
    """
    import importlib, importlib.abc, json, sys

    BLOCKED = {blocked!r}

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    result = {{}}
    try:
        importlib.import_module({module!r})
    except BaseException as exc:
        result = {{"error": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                  "message": str(exc), "cause": type(exc.__cause__).__name__}}
    else:
        result = {{"error": None}}
    result["framework_loaded"] = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
    print(json.dumps(result))
    """
)


def _import_without(module: str, blocked: list[str]) -> dict:
    code = _PROBE.format(module=module, blocked=blocked)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("module", "blocked", "install"),
    [
        ("shortlist.langchain", ["langchain_core"], "pip install 'shortlist[langchain]'"),
        ("shortlist.llama_index", ["llama_index"], "pip install 'shortlist[llama-index]'"),
    ],
)
def test_missing_framework_names_the_extra(module: str, blocked: list[str], install: str) -> None:
    result = _import_without(module, blocked)
    assert result["error"] == "MissingDependencyError", result
    assert "ImportError" in result["mro"] and "ShortlistError" in result["mro"]  # catchable as either
    assert install in result["message"]
    assert result["cause"] == "ModuleNotFoundError"  # the original error is chained, not hidden
    assert result["framework_loaded"] == []


@pytest.mark.parametrize(
    ("module", "blocked"),
    [
        # Each adapter needs only its own framework (and this is the control: the same probe imports it).
        ("shortlist.langchain", ["llama_index"]),
        ("shortlist.llama_index", ["langchain_core", "langchain"]),
    ],
)
def test_adapter_imports_with_only_its_framework(module: str, blocked: list[str]) -> None:
    assert _import_without(module, blocked)["error"] is None


def test_core_still_imports_without_either_framework() -> None:
    result = _import_without("shortlist.prefilter", ["langchain_core", "langchain", "llama_index"])
    assert result["error"] is None
