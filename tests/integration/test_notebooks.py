"""Every notebook in notebooks/ runs top to bottom, offline, in a kernel of this interpreter (nbclient)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat, nbclient and ipykernel")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbformat, nbclient and ipykernel")
pytest.importorskip("ipykernel", reason="the notebook tests need nbformat, nbclient and ipykernel")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
PUBLIC_MODULES = ("shortlist", "shortlist.corpus", "shortlist.langchain", "shortlist.llama_index")
#: Notebooks that draw a chart: the quick start's threshold histogram, the LangChain one's k/tokens trade-off.
CHARTS = ("01_quickstart", "02_langchain_prefiltered_rag")


def test_the_three_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_langchain_prefiltered_rag.ipynb",
        "03_llamaindex_query_engine.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_and_uses_public_api(path: Path) -> None:
    # Committed with their outputs (`make notebooks`), so a reader on a code host sees the tables and charts.
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert all(c.outputs for c in code if "print(" in c.source)
    if path.stem in CHARTS:
        assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), "the chart is missing"
    source = "\n".join(c.source for c in code)
    for line in source.splitlines():
        words = line.split()
        if line.startswith(("from shortlist", "import shortlist")):
            assert words[1] in PUBLIC_MODULES, line  # no private modules (shortlist._x, shortlist.store internals)
    assert "# One line to use a real model" in source or path.name.startswith("01_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORTLIST_NOTEBOOK_SMALL", "1")  # the charts' evaluations on a small slice (seconds)
    nb = nbformat.read(path, as_version=4)
    # The kernel must be this interpreter (the project's venv), not some other Python on the machine.
    nb.cells.append(nbformat.v4.new_code_cell(f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.prefix"))
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}, allow_errors=False
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o["name"] == "stdout")
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if path.stem in CHARTS:
        assert any("image/png" in o.get("data", {}) for o in outputs), "the chart was not drawn"
    expected = {
        "01_quickstart": ["(4, 384) float32", "topic:try", "nothing: skip the LLM call", "ROC-AUC", "min_score="],
        "02_langchain_prefiltered_rag": [
            "prompt with the pre-filter",
            "saved",
            "no LLM call made",
            "documents within a 300-token budget",
            "8 claims; 40 abstracts",
        ],
        "03_llamaindex_query_engine": ["doc:csv", "what the LLM read", "saved"],
    }[path.stem]
    for needle in expected:
        assert needle in text, f"{needle!r} not in the output of {path.name}:\n{text}"
