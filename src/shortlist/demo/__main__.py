"""``python -m shortlist.demo``: the same as ``shortlist demo`` (accepts its options).

The one place in :mod:`shortlist.demo` that reaches the command line, like :mod:`shortlist.__main__`: the demo job
itself imports only the core.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from shortlist.cli import main as cli_main

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``shortlist demo`` with ``argv`` (default: the process's arguments); returns the exit code."""
    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
