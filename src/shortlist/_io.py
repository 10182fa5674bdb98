"""Atomic writes of cache files: the one helper every writer of a file shortlist keeps on disk uses.

A file is written whole to a temporary file in the same folder, flushed to disk (``fsync``), and moved over the
target with :func:`os.replace`, so a reader sees either the old file or the new one, never half of one; a writer
that fails leaves the old file and no temporary behind. :func:`atomic_dir` does the same for a folder (a keyword
index). Where two processes must not do the same work at once (an ONNX export), :func:`file_lock` gives an
inter-process lock (``filelock.FileLock``).

Example:
    ```python
    import tempfile
    from pathlib import Path

    from shortlist._io import atomic_write

    target = Path(tempfile.mkdtemp()) / "state.json"
    atomic_write(target, '{"n": 1}')
    print(target.read_text())
    # {"n": 1}
    ```
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

__all__ = ["atomic_dir", "atomic_path", "atomic_write", "file_lock", "read_json_object"]

#: Permissions of a file written here (``mkstemp`` makes ``0600`` files; caches are readable like any other file).
FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, suffix: str = ".tmp", mode: int = FILE_MODE) -> Iterator[Path]:
    """A temporary path beside ``target``; when the block ends without an error it becomes ``target``, atomically.

    Write the file at the yielded path (with ``open``, or by handing the path to a library that writes it). On a
    clean exit the file is flushed to disk, given ``mode`` and moved over ``target`` with :func:`os.replace`; on an
    error it is removed and ``target`` is left as it was.

    Args:
        target: The file to (re)place. Its folder is created if needed.
        suffix: Ending of the temporary file's name (it starts with ``.<target name>.``).
        mode: Permissions of the final file.

    Yields:
        The temporary file's path (the file exists and is empty).

    Raises:
        OSError: if the folder cannot be written; the original error of the block otherwise.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        tmp.chmod(mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(
    target: str | os.PathLike[str], data: str | bytes, *, encoding: str = "utf-8", mode: int = FILE_MODE
) -> None:
    """Write ``data`` to ``target`` atomically (temporary file in the same folder, ``fsync``, ``os.replace``).

    Args:
        target: The file to write. Its folder is created if needed.
        data: Its whole content: ``str`` (encoded with ``encoding``) or ``bytes``.
        encoding: Encoding of a ``str``.
        mode: Permissions of the file.

    Raises:
        OSError: if the folder cannot be written (the old file, if any, is left as it was).
    """
    with atomic_path(target, mode=mode) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding=encoding)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh temporary folder beside ``target``; when the block ends without an error it replaces ``target``.

    The old folder (if any) is moved aside, the new one renamed into place, then the old one removed: a reader
    finds either the old folder or the whole new one. On an error the temporary folder is removed and ``target``
    is left as it was.

    Args:
        target: The folder to (re)place. Its parent is created if needed.

    Yields:
        The temporary folder (it exists and is empty).

    Raises:
        OSError: if the parent folder cannot be written; the original error of the block otherwise.
    """
    target = Path(target)
    tag = f"{os.getpid()}-{threading.get_ident()}"
    tmp = target.with_name(f"{target.name}.tmp-{tag}")
    old = target.with_name(f"{target.name}.old-{tag}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if target.exists():
            target.rename(old)
        try:
            tmp.rename(target)
        except OSError:
            if old.exists() and not target.exists():
                old.rename(target)  # put the old folder back
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def file_lock(path: str | os.PathLike[str], *, timeout: float = -1) -> FileLock:
    """An exclusive lock between processes (and threads) on the lock file ``path`` (``filelock.FileLock``).

    Use it as a context manager: ``with file_lock(folder / ".export.lock"): ...``.

    Args:
        path: The lock file (created if needed; its folder must exist).
        timeout: Seconds to wait for the lock; ``-1`` waits for ever.

    Returns:
        The lock (not yet acquired).
    """
    return FileLock(str(path), timeout=timeout)


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON file that holds one object (a model folder's ``config.json``, a cache's manifest...).

    Args:
        path: The file.

    Returns:
        Its object, or ``{}`` when the file is missing, unreadable, not JSON, or not a JSON object: callers fall back
        to their defaults.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
