"""Defaults and the one place where arguments, environment variables and defaults are resolved.

Order everywhere: an explicit argument, then the environment variable, then the default. Environment variables are
read when a value is resolved, never at import time.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from shortlist._io import read_json_object
from shortlist.errors import ConfigError

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_MODE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CHROMA_PORT",
    "DEFAULT_CHROMA_TIMEOUT",
    "DEFAULT_COLLECTION",
    "DEFAULT_K",
    "DEFAULT_MODEL",
    "ENV_BACKEND",
    "ENV_CHROMA_PATH",
    "ENV_CHROMA_TIMEOUT",
    "ENV_CHROMA_URL",
    "ENV_DEVICE",
    "ENV_MODEL",
    "ENV_ONNX_THREADS",
    "Backend",
    "ChromaServer",
    "LongTextPolicy",
    "chosen_backend",
    "default_backend",
    "is_unreachable",
    "onnx_exportable",
    "resolve_backend",
    "location_option",
    "parse_chroma_url",
    "resolve_chroma_location",
    "resolve_chroma_path",
    "resolve_chroma_timeout",
    "resolve_device",
    "user_cache_dir",
    "user_data_dir",
]

Backend = Literal["torch", "onnx", "onnx-int8"]
LongTextPolicy = Literal["split", "truncate", "error"]
SearchMode = Literal["dense", "keyword", "hybrid"]

#: The model this project is built around. Resolved offline from the packaged weights (see :mod:`shortlist.model`).
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: The backend when none is chosen, for a mean-pooled local model on the CPU (see :func:`default_backend`).
DEFAULT_BACKEND: Backend = "onnx"
#: The search mode when none is given: adaptive hybrid. It meets every bar of the five-set benchmark
#: (``benchmarks/hybrid.py``: never more than 0.01 under the better single side, above both on four sets).
DEFAULT_MODE: SearchMode = "hybrid"
DEFAULT_BATCH_SIZE = 32
DEFAULT_K = 4
#: The Chroma collection a store, the pre-filter, the CLI and the server use when none is named.
DEFAULT_COLLECTION = "shortlist"
#: The port of a Chroma server (``chroma run``) when a host is given without one.
DEFAULT_CHROMA_PORT = 8000
#: Seconds a request to a Chroma server may take before it fails (chromadb's own client waits forever).
DEFAULT_CHROMA_TIMEOUT = 60.0
DEFAULT_QUERY_CACHE_SIZE = 1024

ENV_MODEL = "SHORTLIST_MODEL"
ENV_DEVICE = "SHORTLIST_DEVICE"
ENV_BACKEND = "SHORTLIST_BACKEND"
ENV_CHROMA_PATH = "SHORTLIST_CHROMA_PATH"
ENV_CHROMA_URL = "SHORTLIST_CHROMA_URL"
ENV_CHROMA_TIMEOUT = "SHORTLIST_CHROMA_TIMEOUT"
ENV_HOME = "SHORTLIST_HOME"
ENV_CACHE = "SHORTLIST_CACHE"
ENV_ONNX_THREADS = "SHORTLIST_ONNX_THREADS"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def resolve_device(device: str | None) -> str:
    """Return the torch device to use: the argument, then ``SHORTLIST_DEVICE``, then ``"cpu"``.

    The default is the CPU, not "whatever accelerator is there": results and speed then do not change with the
    machine. Pass ``"cuda"`` or ``"mps"`` (or set ``SHORTLIST_DEVICE``) to use one.
    """
    return device or _env(ENV_DEVICE) or "cpu"


def resolve_backend(
    backend: str | None, *, device: str = "cpu", model_dir: Path | None = None, local: bool = True
) -> Backend:
    """Return the backend to use: the argument, then ``SHORTLIST_BACKEND``, then :func:`default_backend`.

    Raises:
        ConfigError: if the name is not one of ``"torch"``, ``"onnx"``, ``"onnx-int8"``.
    """
    value = chosen_backend(backend) or default_backend(device, model_dir, local=local)
    choices = get_args(Backend)
    if value not in choices:
        msg = f"Unknown backend {value!r}: choose one of {', '.join(map(repr, choices))}."
        raise ConfigError(msg)
    return value  # type: ignore[return-value]


def chosen_backend(backend: str | None) -> str | None:
    """The backend someone chose: the argument, else ``SHORTLIST_BACKEND``; ``None`` when nobody chose one."""
    return backend or _env(ENV_BACKEND)


def default_backend(device: str = "cpu", model_dir: Path | None = None, *, local: bool = True) -> Backend:
    """The backend when none is chosen: ``"onnx"`` (float32 ONNX Runtime) where it applies, else ``"torch"``.

    ``"onnx"`` gives the same vectors as sentence-transformers (cosine 1.0000 over 2,552 STS-B sentences and 300
    SciFact queries) 1.2-1.9x faster, queries about 3x faster, and a query-only process that never imports torch
    (see the README's backend table). It applies on the CPU, when ``onnxruntime`` is importable, to a local
    sentence-transformers folder the exporter handles: a BERT encoder (``model_type`` ``"bert"``, like
    all-MiniLM-L6-v2) followed only by mean pooling and normalisation. Anything else (``device="cuda"``, a hub id,
    another architecture, CLS pooling, a Dense layer) gets ``"torch"``. ``"onnx-int8"`` is never the default: its
    vectors are close, not equal (cosine >= 0.97), and depend a little on the batch a text is embedded in.
    """
    if not local or not device.startswith("cpu") or (model_dir is not None and not onnx_exportable(model_dir)):
        return "torch"
    import importlib.util

    return DEFAULT_BACKEND if importlib.util.find_spec("onnxruntime") is not None else "torch"


def onnx_exportable(model_dir: Path) -> bool:
    """Whether the ONNX export handles this sentence-transformers folder: BERT + mean pooling (+ Normalize)."""
    import json

    folder = Path(model_dir)
    if read_json_object(folder / "config.json").get("model_type") != "bert":
        return False
    modules_file = folder / "modules.json"  # a JSON list, which read_json_object (objects only) does not read
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(modules, list):
            return False
        kinds = {str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)}
        if not kinds <= {"Transformer", "Pooling", "Normalize"}:
            return False
    if not (folder / "1_Pooling" / "config.json").is_file():
        return True  # a bare transformers folder: sentence-transformers adds mean pooling
    pooling = read_json_object(folder / "1_Pooling" / "config.json")
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    return modes == {"pooling_mode_mean_tokens"}


def user_data_dir() -> Path:
    """Folder for shortlist's data (the default Chroma database): ``SHORTLIST_HOME`` or ``~/.local/share/shortlist``."""
    home = _env(ENV_HOME)
    if home:
        return Path(home).expanduser()
    base = _env("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shortlist"


def user_cache_dir() -> Path:
    """Folder for derived files (exported ONNX models): ``SHORTLIST_CACHE`` or ``~/.cache/shortlist``."""
    cache = _env(ENV_CACHE)
    if cache:
        return Path(cache).expanduser()
    base = _env("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shortlist"


def resolve_chroma_path(path: str | os.PathLike[str] | None) -> Path:
    """Return the embedded Chroma folder: the argument, then ``SHORTLIST_CHROMA_PATH``, then ``<data dir>/chroma``."""
    if path is not None:
        return Path(path).expanduser()
    env = _env(ENV_CHROMA_PATH)
    if env:
        return Path(env).expanduser()
    return user_data_dir() / "chroma"


@dataclass(frozen=True)
class ChromaServer:
    """Where a Chroma server (``chroma run``) listens: a host and a port, spelled as a URL by :attr:`url`."""

    host: str
    port: int = DEFAULT_CHROMA_PORT

    @property
    def url(self) -> str:
        """``http://host:port`` (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __str__(self) -> str:
        return self.url

    def explain(self, exc: BaseException, message: str | None = None) -> str:
        """The message of a failure to use this server, naming it (and, when it could not be reached, what to check).

        Args:
            exc: The failure (its causes are read to tell an unreachable server).
            message: The message to complete (default ``str(exc)``); returned unchanged if it names the server.
        """
        message = " ".join((str(exc) if message is None else message).split()).rstrip(".")
        if f"{self.host}:{self.port}" in message or self.url in message:
            return message
        if is_unreachable(exc):
            return f"{message}: the Chroma server at {self.url} cannot be reached. Is `chroma run` running there?"
        return f"{message} (Chroma server at {self.url})."


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a failed connection or a timeout (a server down or hung)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if isinstance(current, (ConnectionError, TimeoutError)) or (
            type(current).__module__.startswith(("httpx", "httpcore")) and ("Connect" in name or "Timeout" in name)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def parse_chroma_url(url: str, *, name: str = "The Chroma URL") -> ChromaServer:
    """The host and port of a Chroma server's URL: ``http://host:port``, ``host:port`` or ``host`` (port 8000).

    Args:
        url: The URL.
        name: What the URL is, for the error message (an option's or a variable's name).

    Raises:
        ConfigError: for another scheme (``https`` included: not supported yet), a path, a query, a bad port or no
            host.
    """
    text = url.strip()
    parts = urllib.parse.urlsplit(text if "://" in text else f"http://{text}")
    example = "give it as http://HOST:PORT, e.g. http://127.0.0.1:8000"
    if parts.scheme != "http":
        msg = f"{name} {url!r} has the scheme {parts.scheme!r}: only http:// is supported; {example}."
        raise ConfigError(msg)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        msg = f"{name} {url!r} has more than a host and a port: {example}."
        raise ConfigError(msg)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        msg = f"{name} {url!r} has a bad port: {example}."
        raise ConfigError(msg)
    if not parts.hostname:
        msg = f"{name} {url!r} names no host: {example}."
        raise ConfigError(msg)
    return ChromaServer(parts.hostname, port or DEFAULT_CHROMA_PORT)


def resolve_chroma_location(
    path: str | os.PathLike[str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    url: str | None = None,
) -> Path | ChromaServer:
    """Return the Chroma database to use: an embedded folder (a :class:`~pathlib.Path`) or a :class:`ChromaServer`.

    Order: the argument given (``path``, else ``url``, else ``host`` and ``port``); then ``SHORTLIST_CHROMA_URL`` (a
    server); then ``SHORTLIST_CHROMA_PATH``; then ``<data dir>/chroma``.

    Raises:
        ConfigError: for more than one of ``path``, ``url``, ``host``; ``port`` without ``host``; a bad URL; or both
            ``SHORTLIST_CHROMA_URL`` and ``SHORTLIST_CHROMA_PATH`` set (which one is meant?).
    """
    given = [n for n, v in (("path", path), ("url", url), ("host", host)) if v is not None]
    if len(given) > 1:
        msg = f"Give only one of 'path', 'url' or 'host' for a Chroma database; got {', '.join(given)}."
        raise ConfigError(msg)
    if port is not None and host is None:
        msg = "'port' needs 'host' (a Chroma server); for an embedded database give 'path'."
        raise ConfigError(msg)
    if path is not None:
        return Path(path).expanduser()
    if url is not None:
        return parse_chroma_url(url)
    if host is not None:
        return ChromaServer(host, port or DEFAULT_CHROMA_PORT)
    env_url = _env(ENV_CHROMA_URL)
    if env_url is None:
        return resolve_chroma_path(None)
    if _env(ENV_CHROMA_PATH) is not None:
        msg = (
            f"Both {ENV_CHROMA_URL} (a Chroma server) and {ENV_CHROMA_PATH} (an embedded folder) are set: "
            "unset one of them, or name the database explicitly."
        )
        raise ConfigError(msg)
    return parse_chroma_url(env_url, name=ENV_CHROMA_URL)


def resolve_chroma_timeout(timeout: float | None = None) -> float:
    """Seconds a request to a Chroma server may take: the argument, then ``SHORTLIST_CHROMA_TIMEOUT``, then 60.

    A server that is down fails at once (connection refused); this bounds one that hangs (stopped with SIGSTOP,
    overloaded, behind a dead network path): the request then fails with a :class:`~shortlist.errors.StoreError`
    instead of waiting forever, as chromadb's own client would.

    Raises:
        ConfigError: if it is not a positive number.
    """
    raw: object = timeout if timeout is not None else _env(ENV_CHROMA_TIMEOUT)
    if raw is None:
        return DEFAULT_CHROMA_TIMEOUT
    try:
        value = float(raw)  # type: ignore[arg-type]
    except ValueError:
        value = -1.0
    if not value > 0:
        msg = f"The Chroma timeout ({ENV_CHROMA_TIMEOUT}) must be a positive number of seconds, got {raw!r}."
        raise ConfigError(msg)
    return value


def location_option(location: Path | ChromaServer) -> str:
    """The CLI option that names a database: ``--db FOLDER`` or ``--chroma-url URL`` (for messages)."""
    if isinstance(location, ChromaServer):
        return f"--chroma-url {location.url}"
    return f"--db {location}"
