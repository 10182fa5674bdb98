"""The package's import rules, read from every module's source with ``ast`` (no import is run).

What counts as an import: every ``import`` / ``from ... import`` statement anywhere in a module: at the top, inside a
function (lazy imports), and under ``if TYPE_CHECKING:``. ``from a import b`` counts as an import of ``a.b`` when
that is a module, else of ``a``; relative imports are resolved. Strings handed to ``importlib`` are not read.

The rules:

1. Every module belongs to one layer of the core, or to the adapters, or to one app (a new module must be placed).
2. Layers, bottom up: errors/types/config (+ ``_io``, ``_offline``) -> model/text -> encoder (its ONNX modules,
   batching) -> store/keywords -> search/ingest -> prefilter/evaluate/corpus/loaders (and the package's
   ``__init__``); a core module imports only its own layer and the layers below.
3. The core never imports the adapters (``langchain``, ``llama_index`` and their helpers) or the apps
   (``cli``, ``server``, ``demo``).
4. The adapters import the core (and each other), never an app.
5. The apps import the core only, never an adapter or another app. Two launch points are the exception: the CLI
   command that starts the server (``shortlist.cli.serve``) or the demo (``shortlist.cli.demo``), and the
   ``python -m`` entry points (``shortlist.__main__``, ``shortlist.demo.__main__``) that run the CLI.
6. No import cycles between modules (counting every import above, lazy and type-only ones too).
7. Only the store (``shortlist.store``) imports ``chromadb``: it is the one place that opens Chroma. Elsewhere,
   ``chromadb.errors`` (to name an error) and ``chromadb.api`` (the client's type) are allowed.
8. Only ``shortlist.distributed`` imports ``ray`` (an extra: ``pip install 'shortlist[distributed]'``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import shortlist

ROOT = Path(shortlist.__file__).parent

#: The core's layers, bottom up; an entry names a module or a package (all its modules).
CORE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("shortlist.errors", "shortlist.types", "shortlist.config", "shortlist._io", "shortlist._offline"),
    ("shortlist.model", "shortlist.text"),
    (
        "shortlist.encoder",
        "shortlist.batching",
        "shortlist.onnx_backend",
        "shortlist.onnx_export",
        "shortlist.onnx_session",
    ),
    ("shortlist.store", "shortlist.keywords", "shortlist.keyword"),
    ("shortlist.search", "shortlist.ingest", "shortlist.fusion"),
    (
        "shortlist",
        "shortlist.prefilter",
        "shortlist.evaluate",
        "shortlist.corpus",
        "shortlist.loaders",
        "shortlist._empty",
        "shortlist.console",
        "shortlist.distributed",
    ),
)
ADAPTERS = (
    "shortlist.langchain",
    "shortlist.llama_index",
    "shortlist._adapters",
    "shortlist._langchain_vectorstore",
    "shortlist._llama_index_vectorstore",
    "shortlist._vectorstore_rows",
)
APPS = ("shortlist.cli", "shortlist.server", "shortlist.demo")
#: App modules allowed to import another app: the one they launch.
LAUNCHERS = {
    "shortlist.cli.serve": "shortlist.server",
    "shortlist.cli.demo": "shortlist.demo",
    "shortlist.__main__": "shortlist.cli",
    "shortlist.demo.__main__": "shortlist.cli",
}


# ---------------------------------------------------------------------------------------------- reading the source
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


FILES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The longest known module that ``name`` starts with (``None`` outside the package).

    ``from a import b`` arrives here as ``a.b``: the module ``a.b`` when there is one, else (a name in ``a``) ``a``.
    """
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in FILES:
            return candidate
        parts.pop()
    return None


def _imported_names(module: str) -> list[tuple[str, int]]:
    """Every name ``module`` imports, made absolute, with the line of its statement."""
    path = FILES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            out.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
    return out


def _imports(module: str) -> dict[str, int]:
    """The package's modules that ``module`` imports, each with the line of its first import statement."""
    found: dict[str, int] = {}
    for name, line in _imported_names(module):
        target = _resolve(name)
        if target is not None and target != module:
            found.setdefault(target, line)
    return found


GRAPH = {module: _imports(module) for module in FILES}
#: Imports of chromadb outside the store, but for its error types and the client's type (``chromadb.api``).
CHROMA_OUTSIDE_STORE = [
    f"{module} imports {name} (line {line})"
    for module in FILES
    if not (module == "shortlist.store" or module.startswith("shortlist.store."))
    for name, line in _imported_names(module)
    if name.split(".")[0] == "chromadb" and name.split(".")[:2] not in (["chromadb", "errors"], ["chromadb", "api"])
]


#: Imports of ray outside shortlist.distributed.
RAY_OUTSIDE_DISTRIBUTED = [
    f"{module} imports {name} (line {line})"
    for module in FILES
    if not (module == "shortlist.distributed" or module.startswith("shortlist.distributed."))
    for name, line in _imported_names(module)
    if name.split(".")[0] == "ray"
]


def _member(module: str, entries: tuple[str, ...]) -> bool:
    return any(module == e or (e != "shortlist" and module.startswith(e + ".")) for e in entries)


def _layer(module: str) -> int | None:
    for index, entries in enumerate(CORE_LAYERS):
        if _member(module, entries):
            return index
    return None


def _app(module: str) -> str | None:
    if module in ("shortlist.__main__",):
        return "shortlist.cli"  # `python -m shortlist` is the CLI
    return next((app for app in APPS if module == app or module.startswith(app + ".")), None)


def _where(module: str, target: str) -> str:
    return f"{module} imports {target} (line {GRAPH[module][target]})"


def _edges() -> list[tuple[str, str]]:
    return [(m, t) for m, targets in GRAPH.items() for t in targets]


def _violations() -> dict[str, list[str]]:
    """Every broken rule, by rule, as readable lines."""
    out: dict[str, list[str]] = {"placed": [], "layers": [], "core": [], "adapters": [], "apps": []}
    for module in FILES:
        if _layer(module) is None and not _member(module, ADAPTERS) and _app(module) is None:
            out["placed"].append(f"{module} is in no layer: add it to CORE_LAYERS, ADAPTERS or APPS")
    for module, target in _edges():
        layer, target_layer = _layer(module), _layer(target)
        if layer is not None:
            if target_layer is None:
                out["core"].append(_where(module, target))
            elif target_layer > layer:
                out["layers"].append(f"{_where(module, target)}: layer {layer} reaches up to layer {target_layer}")
        elif _member(module, ADAPTERS):
            if _app(target) is not None:
                out["adapters"].append(_where(module, target))
        elif (own := _app(module)) is not None:
            other = _app(target)
            if _member(target, ADAPTERS) or (other is not None and other != own and LAUNCHERS.get(module) != other):
                out["apps"].append(_where(module, target))
    return out


def _cycles() -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return sorted(groups)


def _cycle_lines() -> list[str]:
    lines = []
    for group in _cycles():
        inner = [_where(m, t) for m in group for t in GRAPH[m] if t in group]
        lines.append(" <-> ".join(group) + ": " + "; ".join(inner))
    return lines


def _found(rule: str) -> list[str]:
    if rule == "chroma":
        return CHROMA_OUTSIDE_STORE
    if rule == "ray":
        return RAY_OUTSIDE_DISTRIBUTED
    return _cycle_lines() if rule == "cycles" else _violations()[rule]


def _broken(rule: str) -> list[str]:
    """The lines that break ``rule``."""
    return _found(rule)


# ---------------------------------------------------------------------------------------------- the rules
def test_the_reader_sees_the_package() -> None:
    assert {"shortlist", "shortlist.encoder", "shortlist.store", "shortlist.prefilter"} <= set(FILES)
    assert "shortlist.errors" in GRAPH["shortlist.encoder"]  # a top-level import
    assert "shortlist.encoder" in GRAPH["shortlist.store.chunkstore"]  # a lazy and a type-only import


@pytest.mark.parametrize("rule", ["placed", "layers", "core", "adapters", "apps", "cycles", "chroma", "ray"])
def test_import_rule(rule: str) -> None:
    wrong = _broken(rule)
    assert not wrong, "\n".join(wrong)


def test_a_cycle_is_found() -> None:
    """The cycle finder on a made-up graph (so a clean tree is not a finder that finds nothing)."""
    saved = dict(GRAPH)
    try:
        GRAPH.clear()
        GRAPH.update({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}})
        assert _cycles() == [["a", "b", "c"]]
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_each_rule_catches_its_kind_of_import() -> None:
    """The rules on made-up imports between real modules (so a clean tree is not rules that pass anything)."""
    made_up = {
        "shortlist.errors": {"shortlist.prefilter": 1},  # up the layers
        "shortlist.store.chunkstore": {"shortlist.cli": 2},  # the core into an app
        "shortlist.langchain": {"shortlist.server": 3},  # an adapter into an app
        "shortlist.server": {"shortlist.cli": 4, "shortlist.llama_index": 5},  # an app into another app, an adapter
        "shortlist.cli.serve": {"shortlist.server": 6},  # the launcher: allowed
    }
    saved = dict(GRAPH)
    try:
        GRAPH.clear()
        GRAPH.update(made_up)
        found = _violations()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
    assert found["layers"] == ["shortlist.errors imports shortlist.prefilter (line 1): layer 0 reaches up to layer 5"]
    assert found["core"] == ["shortlist.store.chunkstore imports shortlist.cli (line 2)"]
    assert found["adapters"] == ["shortlist.langchain imports shortlist.server (line 3)"]
    assert found["apps"] == [
        "shortlist.server imports shortlist.cli (line 4)",
        "shortlist.server imports shortlist.llama_index (line 5)",
    ]
