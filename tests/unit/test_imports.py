"""The public surface and the dependency direction: the core never imports the frameworks."""

from __future__ import annotations

import json
import subprocess
import sys

import shortlist

EXPECTED_ALL = {
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
}


def test_public_names_do_not_change_by_accident() -> None:
    # Prefilter/ChunkStore (and friends) are lazy attributes: checked separately when present.
    assert EXPECTED_ALL <= set(shortlist.__all__)
    for name in shortlist.__all__:
        assert getattr(shortlist, name) is not None


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_core_does_not_import_the_frameworks() -> None:
    imported = ["import shortlist", "import shortlist.encoder", "import shortlist.text", "import shortlist.model"]
    for extra in ("shortlist.prefilter", "shortlist.cli"):
        try:
            __import__(extra)
        except ModuleNotFoundError:
            continue  # not written yet
        imported.append(f"import {extra}")
    modules = _modules_after("\n".join(imported))
    for framework in ("langchain_core", "llama_index"):
        assert not any(m == framework or m.startswith(framework + ".") for m in modules), framework


def test_import_shortlist_is_light() -> None:
    """`import shortlist` loads neither torch nor sentence-transformers nor chromadb: they wait until needed."""
    modules = _modules_after("import shortlist")
    for heavy in ("torch", "sentence_transformers", "transformers", "chromadb"):
        assert heavy not in modules, heavy
