"""The apps (the CLI, the server, the demo) depend on the core only, and never open Chroma themselves.

Read from the modules' source (every import statement, at module level or inside a function), so a lazy import
counts as much as one at the top. The rules:

- the server and the demo job import neither the CLI nor each other;
- the CLI reaches the server and the demo only to launch them, from the command that does (``serve``, ``demo``);
- ``shortlist.__main__`` and ``shortlist.demo.__main__`` are the ``python -m`` entry points: they run the CLI;
- no app module imports ``chromadb`` (its error types aside): Chroma is opened through ``ChunkStore``;
- no core module imports an app.
"""

from __future__ import annotations

import ast
from pathlib import Path

import shortlist

ROOT = Path(shortlist.__file__).parent
APPS = ("shortlist.cli", "shortlist.server", "shortlist.demo")
ENTRY_POINTS = {"shortlist.__main__", "shortlist.demo.__main__"}
#: The CLI modules that launch another app, and the one they launch.
LAUNCHERS = {"shortlist.cli.serve": "shortlist.server", "shortlist.cli.demo": "shortlist.demo"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _app_of(module: str) -> str | None:
    return next((app for app in APPS if module == app or module.startswith(app + ".")), None)


def _is_module(name: str) -> bool:
    return name in MODULES


def test_the_apps_are_found() -> None:
    for app in APPS:
        assert any(_app_of(m) == app for m in MODULES), app


def test_apps_import_no_other_app_except_to_launch_it() -> None:
    wrong = []
    for module, imported in MODULES.items():
        own = _app_of(module)
        if own is None or module in ENTRY_POINTS:
            continue
        for name in imported:
            other = _app_of(name)
            if other is None or other == own or not _is_module(name):
                continue
            if LAUNCHERS.get(module) == other:
                continue
            wrong.append(f"{module} imports {name}")
    assert not wrong, wrong


def test_entry_points_run_the_cli() -> None:
    for module in ENTRY_POINTS:
        assert "shortlist.cli" in MODULES[module], module


def test_apps_do_not_open_chroma() -> None:
    wrong = [
        f"{module} imports {name}"
        for module, imported in MODULES.items()
        if _app_of(module) is not None
        for name in imported
        if (name == "chromadb" or name.startswith("chromadb.")) and not name.startswith("chromadb.errors")
    ]
    assert not wrong, wrong


def test_the_core_imports_no_app() -> None:
    wrong = [
        f"{module} imports {name}"
        for module, imported in MODULES.items()
        if _app_of(module) is None and module not in ENTRY_POINTS
        for name in imported
        if _app_of(name) is not None
    ]
    assert not wrong, wrong
