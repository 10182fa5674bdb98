"""Run every notebook in this folder top to bottom and save it with its outputs (``make notebooks``).

The notebooks are committed executed, so a reader on a code host sees their tables and charts. Run this after
changing one; the tests (tests/integration/test_notebooks.py) execute them again on a smaller slice.

Usage: ``python notebooks/execute.py [NAME.ipynb ...]`` (default: all of them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent


def execute(path: Path) -> None:
    """Execute ``path`` in place in a kernel of this interpreter; volatile metadata is dropped for stable diffs."""
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    sys.stdout.write(f"{path.name}: executed in {time.perf_counter() - started:.0f} s\n")


if __name__ == "__main__":
    names = sys.argv[1:]
    for notebook in [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb")):
        execute(notebook)
