"""The ``shortlist`` group, its error handling and :func:`main`, the entry point of the console script."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from shortlist import __version__
from shortlist.config import is_unreachable
from shortlist.errors import ShortlistError

__all__ = ["ShortlistGroup", "cli", "main"]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class ShortlistGroup(click.Group):
    """A click group that turns shortlist's own errors into one-line :class:`click.ClickException` messages."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a :class:`ShortlistError` (or Chroma's own error) becomes ``Error: <one line>``."""
        try:
            return super().invoke(ctx)
        except ShortlistError as exc:
            raise click.ClickException(_one_line(exc)) from exc
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("chromadb") or is_unreachable(exc):  # a server down or hung too
                msg = f"Chroma: {_one_line(exc)}"
                raise click.ClickException(msg) from exc
            raise


@click.group(cls=ShortlistGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="shortlist")
@click.option("-v", "--verbose", count=True, help="Log progress (-v: info, -vv: debug) to stderr.")
def cli(verbose: int) -> None:
    """Shortlist: a small, fast, offline retrieval pre-filter on all-MiniLM-L6-v2 and Chroma.

    \b
    Start with the demo, then index your own files:
      shortlist demo
      shortlist index docs/ --collection notes
      shortlist query "how do I rotate the logs?" --collection notes -k 5
    """  # noqa: D301
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``shortlist`` command; returns the exit code (0 ok, 1 error, 2 usage error)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="shortlist", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return 0
