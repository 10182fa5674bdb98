"""The options several commands share, each declared once: the encoder's, the store's, ``--json`` and the rest.

A command takes them as decorators: :func:`encoder_options` gives it ``settings`` (an :class:`EncoderSettings`),
:func:`store_options` gives it ``db`` (a resolved :class:`~pathlib.Path`) and ``collection``; :func:`db_option`
and :func:`collection_option` give one of the two with the command's own help or default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from shortlist.config import (
    DEFAULT_COLLECTION,
    ENV_BACKEND,
    ENV_CHROMA_PATH,
    ENV_DEVICE,
    ENV_MODEL,
    resolve_chroma_path,
)
from shortlist.search.options import SEARCH_MODES

if TYPE_CHECKING:
    from shortlist.encoder import Encoder

__all__ = [
    "BACKENDS",
    "DEFAULT_COLLECTION",
    "MODES",
    "EncoderSettings",
    "chunk_tokens_option",
    "collection_option",
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


def collection_option(
    *,
    default: str | None = DEFAULT_COLLECTION,
    help: str = "Name of the Chroma collection.",  # noqa: A002
) -> Decorator:
    """``--collection``/``-c`` as ``collection`` (its default shown in ``--help`` when there is one)."""
    return click.option("--collection", "-c", default=default, show_default=default is not None, help=help)


def store_options(func: F) -> F:
    """Add ``--db`` and ``--collection`` (default ``shortlist``) as ``db`` (a resolved Path) and ``collection``."""
    return db_option()(collection_option()(func))


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
