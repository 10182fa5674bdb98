"""``python -m shortlist``: the same as the ``shortlist`` command."""

from __future__ import annotations

from shortlist.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
