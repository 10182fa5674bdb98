"""Every Python block in README.md and docs/*.md runs as written, and prints what its output comments say.

Also: every relative link of those pages (and its #anchor) resolves, and every ``shortlist ...`` command line they show
names a command and options that ``shortlist <command> --help`` lists.

Each ```python block runs on its own: a fresh namespace, a temporary working directory, the real shared encoder
(blocks share the process, so ``Encoder.shared()`` loads the model once). A block whose ``print(...)`` lines are
followed by ``# ...`` comment lines must print exactly those lines (all of them, in order), so the outputs shown in
the docs cannot drift from what the code does.

A block that cannot run here (it needs a running server or a real LLM) says so explicitly, either in its fence
(```python no-run: needs a running `shortlist serve`) or on the line before the fence
(``<!-- no-run: needs a running `shortlist serve` -->``); it is reported as skipped with that reason, and a block
marked without a reason fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shortlist import Encoder

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<ticks>`{3,})\s*(?P<info>.*)$")
_NO_RUN_COMMENT = re.compile(r"^<!--\s*no-run\s*:?\s*(?P<reason>.*?)\s*-->$")
_NO_RUN_INFO = re.compile(r"\bno-run\b\s*:?\s*(?P<reason>.*)$")
#: At most this many blocks may be marked no-run: the docs are meant to run.
MAX_SKIPPED = 6


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a Markdown page."""

    page: Path
    index: int  # 0-based among the page's python blocks
    line: int  # 1-based line of the first code line
    code: str
    skip_reason: str | None  # None: the block runs; "" marks a no-run without a reason (an error)

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}#{self.index}(line {self.line})"


def _blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        ticks, info = match["ticks"], match["info"].strip()
        end = i + 1
        while end < len(lines) and not lines[end].startswith(ticks):
            end += 1
        language = info.split(maxsplit=1)[0].lower() if info else ""
        if language in {"python", "py"}:
            reason: str | None = None
            info_mark = _NO_RUN_INFO.search(info)
            if info_mark:
                reason = info_mark["reason"].strip()
            previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            comment_mark = _NO_RUN_COMMENT.match(previous)
            if comment_mark:
                reason = comment_mark["reason"].strip()
            code = "\n".join(lines[i + 1 : end])
            blocks.append(Block(page, len(blocks), i + 2, code, reason))
        i = end + 1
    return blocks


BLOCKS = [block for page in PAGES for block in _blocks(page)]


def expected_output(code: str) -> list[str]:
    """The output comments of a block: runs of ``# ...`` lines right after a line that calls ``print(``."""
    expected: list[str] = []
    in_output = False
    for line in code.splitlines():
        stripped = line.strip()
        if in_output and line.startswith("#"):
            expected.append(line[2:].rstrip() if line.startswith("# ") else line[1:].rstrip())
            continue
        in_output = "print(" in stripped and not stripped.startswith("#")
    return expected


@pytest.fixture
def _restored_llama_settings() -> Iterator[None]:
    """LlamaIndex's global Settings as they were before the block (a block may set ``Settings.embed_model``)."""
    try:
        from llama_index.core import Settings
    except ImportError:  # pragma: no cover - the llama-index extra is part of the dev install
        yield
        return
    saved = (Settings._embed_model, Settings._llm)
    try:
        yield
    finally:
        Settings._embed_model, Settings._llm = saved


def test_the_pages_have_blocks() -> None:
    """README.md and the docs hold runnable blocks, and every no-run mark gives its reason."""
    runnable = [block for block in BLOCKS if block.skip_reason is None]
    readme = [block for block in runnable if block.page.name == "README.md"]
    assert len(readme) >= 3, [block.name for block in readme]
    assert len(runnable) >= 8
    unexplained = [block.name for block in BLOCKS if block.skip_reason == ""]
    assert not unexplained, f"no-run blocks must say why: {unexplained}"
    skipped = [block for block in BLOCKS if block.skip_reason is not None]
    assert len(skipped) <= MAX_SKIPPED, [block.name for block in skipped]


def test_expected_output_reads_the_comments_after_prints() -> None:
    code = "x = 1\nprint(x)\n# 1\n# two\ny = 2  # a note\n# not output\nfor i in (1,):\n    print(i)\n# 1\n"
    assert expected_output(code) == ["1", "two", "1"]


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
@pytest.mark.usefixtures("_restored_llama_settings")
def test_block_runs(block: Block, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block runs on its own in a temporary folder and prints what its output comments say."""
    if block.skip_reason is not None:
        pytest.skip(f"{block.name}: no-run: {block.skip_reason or '(no reason given)'}")
    monkeypatch.chdir(tmp_path)
    # Pad so that a traceback names the Markdown file and its line.
    source = "\n" * (block.line - 1) + block.code
    compiled = compile(source, str(block.page), "exec")
    namespace: dict[str, object] = {"__name__": "__docs_block__"}
    stdout = io.StringIO()
    environ = dict(os.environ)  # a block may set SHORTLIST_* variables to show them: they must not leak
    try:
        with contextlib.redirect_stdout(stdout):
            exec(compiled, namespace)  # noqa: S102 - the documentation's own code, on purpose
    finally:
        os.environ.clear()
        os.environ.update(environ)
    printed = [line.rstrip() for line in stdout.getvalue().splitlines()]
    expected = expected_output(block.code)
    if expected:
        assert printed == expected, f"{block.name} printed other lines than its output comments say"


# ----------------------------------------------------------------------------------------------------- links

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    anchors: set[str] = set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("#"):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO)) for page in PAGES])
def test_links_resolve(page: Path) -> None:
    """Every relative link points at a file of the checkout, and its #anchor at a heading of that file."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for match in _LINK.finditer(text):
        target = match["target"]
        if re.match(r"^[a-z]+:", target):
            continue  # http(s)://, mailto: ...
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert not broken, broken


# ---------------------------------------------------------------------------------------------------- the CLI


def _help(*args: str) -> str:
    from shortlist.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*args, "--help"])
        except SystemExit as exc:  # click's standalone mode
            assert exc.code in (0, None)
    return out.getvalue()


def _options(help_text: str) -> set[str]:
    options_section = help_text.split("Options:", 1)[1]
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", options_section))


def _command_lines() -> list[tuple[str, list[str]]]:
    """``shortlist ...`` lines of the pages' bash/text blocks, as (where, arguments after ``shortlist``)."""
    found = []
    for page in PAGES:
        in_block = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                in_block = not in_block
                continue
            command = line.strip().removeprefix("$ ")
            if not in_block or not command.startswith("shortlist "):
                continue
            command = command.split(" | ", 1)[0]
            words = shlex.split(command, comments=True)
            found.append((f"{page.relative_to(REPO)}:{number}", words[1:]))
    return found


def test_cli_examples_use_real_commands_and_options() -> None:
    """The commands and options of every ``shortlist ...`` example exist (``shortlist <command> --help``)."""
    commands_section = _help().split("Commands:", 1)[1]
    commands = set(re.findall(r"^  (\w+)", commands_section, flags=re.MULTILINE))
    assert {"index", "query", "serve"} <= commands
    lines = _command_lines()
    assert len(lines) >= 10
    unknown = []
    options: dict[str, set[str]] = {}
    for where, words in lines:
        if not words or words[0].startswith("-"):
            continue
        command = words[0]
        if command not in commands:
            unknown.append(f"{where}: no command {command!r}")
            continue
        if command not in options:
            options[command] = _options(_help(command))
        for word in words[1:]:
            if re.match(r"--?[A-Za-z]", word) and word.split("=", 1)[0] not in options[command]:
                unknown.append(f"{where}: {command} has no option {word!r}")
    assert not unknown, unknown


def _help_blocks() -> list[tuple[str, list[str], list[str]]]:
    """Text blocks that start with ``$ shortlist ... --help``: (where, arguments, the lines shown under it)."""
    found = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.startswith("```") and number + 1 < len(lines):
                first = lines[number + 1]
                if first.startswith("$ shortlist ") and first.rstrip().endswith("--help"):
                    end = next(i for i in range(number + 2, len(lines)) if lines[i].startswith("```"))
                    words = shlex.split(first.removeprefix("$ "))[1:-1]
                    found.append((f"{page.relative_to(REPO)}:{number + 2}", words, lines[number + 2 : end]))
    return found


def test_help_shown_in_the_docs_is_current() -> None:
    """A ``$ shortlist ... --help`` block shows lines of today's help, in one piece and unchanged."""
    blocks = _help_blocks()
    assert blocks, "docs/cli.md shows `shortlist --help`"
    stale = []
    for where, words, shown in blocks:
        actual = [line.rstrip() for line in _help(*words).splitlines()]
        shown = [line.rstrip() for line in shown]
        starts = [i for i, line in enumerate(actual) if line == shown[0]]
        if not any(actual[i : i + len(shown)] == shown for i in starts):
            stale.append(f"{where}: not what `shortlist {' '.join([*words, '--help'])}` prints today")
    assert not stale, stale
