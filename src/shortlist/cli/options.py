"""The options several commands share, each declared once: the encoder's, the store's, ``--json`` and the rest.

A command takes them as decorators: :func:`encoder_options` gives it ``settings`` (an :class:`EncoderSettings`),
:func:`store_options` gives it ``db`` (a :class:`Database`: an embedded folder or a Chroma server) and
``collection``; :func:`database_options` and :func:`collection_option` give one of the two with the command's own
help or default; :func:`db_option` an embedded folder only (the demo's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click
from click.core import ParameterSource

from shortlist.config import (
    DEFAULT_CHROMA_PORT,
    DEFAULT_COLLECTION,
    ENV_BACKEND,
    ENV_CHROMA_PATH,
    ENV_CHROMA_URL,
    ENV_DEVICE,
    ENV_MODEL,
    ChromaServer,
    location_option,
    resolve_chroma_location,
    resolve_chroma_path,
)
from shortlist.errors import ConfigError, StoreError
from shortlist.search.options import SEARCH_MODES

if TYPE_CHECKING:
    from shortlist.encoder import Encoder

__all__ = [
    "BACKENDS",
    "DEFAULT_COLLECTION",
    "MODES",
    "Database",
    "EncoderSettings",
    "chunk_tokens_option",
    "collection_option",
    "database_options",
    "db_option",
    "encoder_options",
    "json_option",
    "model_option",
    "progress_option",
    "store_options",
]

F = TypeVar("F", bound=Callable[..., Any])


class Decorator(Protocol):
    """A click option (or several): takes a command function, returns it with the option(s) attached."""

    def __call__(self, func: F, /) -> F: ...


BACKENDS = ("torch", "onnx", "onnx-int8")
MODES: tuple[str, ...] = SEARCH_MODES
DB_HELP = "Folder of the embedded Chroma database (default: ~/.local/share/shortlist/chroma)."
DATABASE_HELP = (
    "Folder of the embedded Chroma database (default: the server of SHORTLIST_CHROMA_URL if set, else "
    "~/.local/share/shortlist/chroma)."
)
MODEL_HELP = "Embedding model: a local sentence-transformers folder (default: the packaged all-MiniLM-L6-v2)."


@dataclass
class EncoderSettings:
    """The encoder the user asked for; ``None`` fields fall back to the environment, then the defaults."""

    model: str | None = None
    backend: str | None = None
    device: str | None = None

    def encoder(self) -> Encoder:
        """The process's shared encoder for these settings (not loaded yet)."""
        from shortlist.encoder import Encoder

        return Encoder.shared(self.model, device=self.device, backend=self.backend)


def model_option(*, metavar: str = "NAME_OR_DIR", help: str = MODEL_HELP) -> Decorator:  # noqa: A002
    """``--model`` (``SHORTLIST_MODEL``): a model name or local folder, as ``model``."""
    return click.option("--model", envvar=ENV_MODEL, show_envvar=True, metavar=metavar, help=help)


def encoder_options(func: F) -> F:
    """Add ``--model``, ``--backend`` and ``--device`` (each with its ``SHORTLIST_*`` variable) as ``settings``."""

    @model_option()
    @click.option(
        "--backend",
        envvar=ENV_BACKEND,
        show_envvar=True,
        type=click.Choice(BACKENDS),
        help="Inference backend (default: onnx on the CPU for a mean-pooled local model, else torch).",
    )
    @click.option("--device", envvar=ENV_DEVICE, show_envvar=True, help="Torch device (default: cpu).")
    @functools.wraps(func)
    def wrapper(*args: Any, model: str | None, backend: str | None, device: str | None, **kwargs: Any) -> Any:
        return func(*args, settings=EncoderSettings(model or None, backend or None, device or None), **kwargs)

    return wrapper  # type: ignore[return-value]


def _resolve_db(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    return resolve_chroma_path(value)


def db_option(*, help: str = DB_HELP) -> Decorator:  # noqa: A002
    """``--db`` (``SHORTLIST_CHROMA_PATH``) as ``db``: the embedded Chroma folder, resolved (never ``None``)."""
    return click.option(
        "--db",
        envvar=ENV_CHROMA_PATH,
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        callback=_resolve_db,
        help=help,
    )


@dataclass(frozen=True)
class Database:
    """Where a command's collections are: an embedded folder (``--db``) or a Chroma server (``--chroma-url``).

    Attributes:
        location: The folder, or the server's host and port.
    """

    location: Path | ChromaServer

    @property
    def path(self) -> Path | None:
        """The embedded folder; ``None`` for a server."""
        return self.location if isinstance(self.location, Path) else None

    @property
    def server(self) -> ChromaServer | None:
        """The Chroma server; ``None`` for an embedded folder."""
        return self.location if isinstance(self.location, ChromaServer) else None

    def store_kwargs(self) -> dict[str, Any]:
        """``path=...`` or ``host=..., port=...``: the arguments that open it as a store or a pre-filter."""
        if isinstance(self.location, ChromaServer):
            return {"host": self.location.host, "port": self.location.port}
        return {"path": self.location}

    def option(self) -> str:
        """The command-line option that names it: ``--db FOLDER`` or ``--chroma-url URL``."""
        return location_option(self.location)

    def __str__(self) -> str:
        return str(self.location)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def database_options(*, help: str = DATABASE_HELP) -> Decorator:  # noqa: A002
    """``--db`` (``SHORTLIST_CHROMA_PATH``), ``--chroma-url`` (``SHORTLIST_CHROMA_URL``), ``--chroma-host`` and
    ``--chroma-port`` as ``db``: a :class:`Database`.

    An option on the command line beats the environment; two options that name different databases (``--db``
    with a server option, ``--chroma-url`` with ``--chroma-host``) are a usage error, and so is ``--chroma-port``
    without ``--chroma-host``. With no option: ``SHORTLIST_CHROMA_URL``, else ``SHORTLIST_CHROMA_PATH``, else the
    default folder (both variables set is an error: which one is meant?).
    """  # noqa: D205

    def decorate(func: F) -> F:
        @click.option(
            "--db",
            envvar=ENV_CHROMA_PATH,
            show_envvar=True,
            type=click.Path(file_okay=False, path_type=Path),
            help=help,
        )
        @click.option(
            "--chroma-url",
            envvar=ENV_CHROMA_URL,
            show_envvar=True,
            metavar="URL",
            help="A Chroma server (chroma run) instead of a folder, as http://HOST:PORT.",
        )
        @click.option("--chroma-host", metavar="HOST", help="The Chroma server's host (instead of --chroma-url).")
        @click.option(
            "--chroma-port",
            type=click.IntRange(1, 65535),
            metavar="PORT",
            help=f"The Chroma server's port (with --chroma-host; default {DEFAULT_CHROMA_PORT}).",
        )
        @functools.wraps(func)
        def wrapper(
            *args: Any,
            db: Path | None,
            chroma_url: str | None,
            chroma_host: str | None,
            chroma_port: int | None,
            **kwargs: Any,
        ) -> Any:
            ctx = click.get_current_context()
            given = {
                "--db": db if _given(ctx, "db") else None,
                "--chroma-url": chroma_url if _given(ctx, "chroma_url") else None,
                "--chroma-host": chroma_host or None,
            }
            named = [name for name, value in given.items() if value is not None]
            if len(named) > 1:
                msg = f"{' and '.join(named)} name two databases: give one of them."
                raise click.UsageError(msg)
            if chroma_port is not None and chroma_host is None:
                msg = "--chroma-port needs --chroma-host (or give --chroma-url http://HOST:PORT)."
                raise click.UsageError(msg)
            url = given["--chroma-url"]
            try:
                location = resolve_chroma_location(
                    given["--db"], url=str(url) if url else None, host=chroma_host or None, port=chroma_port
                )
            except ConfigError as exc:
                if url is None:
                    raise  # the environment's (one line, from the group)
                raise click.BadParameter(str(exc), param_hint="--chroma-url") from exc
            try:
                return func(*args, db=Database(location), **kwargs)
            except StoreError as exc:
                if type(exc) is not StoreError or not isinstance(location, ChromaServer):
                    raise
                raise StoreError(location.explain(exc)) from exc  # one line that names the server

        return wrapper  # type: ignore[return-value]

    return decorate


def collection_option(
    *,
    default: str | None = DEFAULT_COLLECTION,
    help: str = "Name of the Chroma collection.",  # noqa: A002
) -> Decorator:
    """``--collection``/``-c`` as ``collection`` (its default shown in ``--help`` when there is one)."""
    return click.option("--collection", "-c", default=default, show_default=default is not None, help=help)


def store_options(func: F) -> F:
    """Add the :func:`database_options` and ``--collection`` (default ``shortlist``) as ``db`` (a
    :class:`Database`) and ``collection``."""  # noqa: D205, D209
    return database_options()(collection_option()(func))


def json_option(help: str) -> Decorator:  # noqa: A002
    """``--json`` as ``as_json``: print JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def progress_option(help: str = "Show a progress bar (default: on a terminal).") -> Decorator:  # noqa: A002
    """``--progress/--no-progress`` as ``progress`` (``None``: on when stderr is a terminal)."""
    return click.option("--progress/--no-progress", default=None, help=help)


#: ``--chunk-tokens`` as ``chunk_tokens``: the chunk size in word pieces (16-254, default 128).
chunk_tokens_option: Decorator = click.option(
    "--chunk-tokens", type=click.IntRange(16, 254), default=128, show_default=True, help="Chunk size."
)
