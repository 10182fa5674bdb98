"""One process per embedded Chroma folder: the lock :func:`~shortlist.store.client.open_client` takes.

Chroma's embedded mode (``PersistentClient``) supports one client process per folder: two processes writing (or one
writing while another reads) leave stale indexes or corrupt files, silently. So every shortlist client of an
embedded folder holds an OS lock on ``<folder>/shortlist.lock`` (``flock``, exclusive, never waited for), with the
holder's pid written inside it. A second process that opens the folder gets a :class:`~shortlist.errors.StoreError`
naming that pid and the fix: serve the folder with ``chroma run --path <folder>`` and connect every process to it.

Within one process, any number of stores and pre-filters may share a folder (Chroma shares one ``System`` per path
too): :func:`hold` counts them, :func:`release` lets the lock go when the last one closes. The OS drops the lock
when the process ends, however it ends (``SIGKILL`` included), so a crashed holder never leaves the folder locked;
a stale pid left in the file is only overwritten by the next holder. A process forked from a holder is a second
process: it starts with an empty registry (its copies of the parent's lock descriptors are closed), and its own
open is refused while the parent holds the folder.

Example:
    ```python
    import tempfile
    from pathlib import Path

    from shortlist.store import folder_lock

    folder = Path(tempfile.mkdtemp())
    folder_lock.hold(folder)
    folder_lock.hold(folder)  # a second store of this process: counted, not refused
    print(folder_lock.holders(folder), folder_lock.holder_pid(folder) is not None)
    # 2 True
    folder_lock.release(folder)
    folder_lock.release(folder)
    print(folder_lock.holders(folder))
    # 0
    ```
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from shortlist.errors import StoreError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "busy_message", "hold", "holder_pid", "holders", "release"]

#: The lock file inside an embedded Chroma folder (it holds the holder's pid).
LOCK_FILE = "shortlist.lock"


@dataclass
class _Hold:
    fd: int
    pid: int
    count: int


_HOLDS: dict[Path, _Hold] = {}
_GUARD = threading.Lock()


def _key(folder: str | os.PathLike[str]) -> Path:
    return Path(folder).expanduser().resolve()


def holder_pid(folder: str | os.PathLike[str]) -> int | None:
    """The pid written in the folder's lock file (the current or last holder), or ``None`` if there is none."""
    try:
        text = (_key(folder) / LOCK_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _command_of(pid: int) -> str | None:
    """A short form of process ``pid``'s command line (``shortlist serve --db x``), where ``/proc`` tells it."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return None
    argv = [a for a in argv if a]
    if argv and Path(argv[0]).name.startswith("python"):
        argv = argv[1:]  # `python script.py ...` -> `script.py ...`; `python -m shortlist ...` -> `shortlist ...`
        if argv[:1] == ["-m"]:
            argv = argv[1:]
    if not argv:
        return None
    text = " ".join([Path(argv[0]).name, *argv[1:]])
    return text if len(text) <= 120 else text[:117] + "..."


def busy_message(folder: str | os.PathLike[str], pid: int | None) -> str:
    """The refusal a second process gets: who holds the folder, and how to share it (``chroma run``)."""
    key = _key(folder)
    command = _command_of(pid) if pid is not None else None
    who = "another process" if pid is None else f"process {pid}" + (f" (`{command}`)" if command else "")
    return (
        f"The Chroma folder {key} is open by {who}; Chroma's embedded mode allows one process at a time. "
        f"Wait for it to finish, or to share the folder: stop it, serve the folder with `chroma run --path {key} "
        f"--port 8000` and connect every process to that server (--chroma-url http://localhost:8000 or "
        f"SHORTLIST_CHROMA_URL for the CLI, host=/port= in Python)."
    )


def _lock_fd(key: Path) -> int:
    """Open the lock file and take its lock without waiting; the descriptor, or StoreError if it is held."""
    path = key / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        msg = f"Could not open the lock file {path}: {exc}. Is the folder writable?"
        raise StoreError(msg) from exc
    if fcntl is None:  # pragma: no cover - Windows: msvcrt locks a byte range instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            raise StoreError(busy_message(key, holder_pid(key))) from None
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(busy_message(key, holder_pid(key))) from None
    except OSError as exc:  # a file system without locks (some network mounts)
        os.close(fd)
        msg = f"Could not lock {path}: {exc}. Keep embedded Chroma folders on a local disk, or use `chroma run`."
        raise StoreError(msg) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def hold(folder: str | os.PathLike[str]) -> Path:
    """Count one more client of ``folder`` in this process, taking the folder's lock for the first.

    Args:
        folder: An existing embedded Chroma folder.

    Returns:
        The folder's resolved path (the registry's key; give it, or the same folder, to :func:`release`).

    Raises:
        StoreError: if another process holds the folder (the message names its pid and ``chroma run``), or the
            lock file cannot be written.
    """
    key = _key(folder)
    with _GUARD:
        held = _HOLDS.get(key)
        if held is not None and held.pid == os.getpid():
            held.count += 1
            return key
        _HOLDS[key] = _Hold(_lock_fd(key), os.getpid(), 1)
        return key


def release(folder: str | os.PathLike[str]) -> None:
    """Count one client of ``folder`` fewer in this process; the last one lets the lock go.

    Releasing a folder this process does not hold (or holds through a forked parent) does nothing.
    """
    key = _key(folder)
    with _GUARD:
        held = _HOLDS.get(key)
        if held is None or held.pid != os.getpid():
            return
        held.count -= 1
        if held.count > 0:
            return
        del _HOLDS[key]
        try:
            os.ftruncate(held.fd, 0)
        except OSError:  # pragma: no cover - the pid is only advice
            pass
        os.close(held.fd)  # closing the only descriptor drops the flock


def holders(folder: str | os.PathLike[str]) -> int:
    """How many open clients of ``folder`` this process counts (0: it does not hold the folder)."""
    with _GUARD:
        held = _HOLDS.get(_key(folder))
        return held.count if held is not None and held.pid == os.getpid() else 0


def _forget_in_child() -> None:
    """After a fork: the child is another process; the parent's locks stay the parent's (the copies are closed)."""
    global _GUARD
    _GUARD = threading.Lock()
    for held in _HOLDS.values():
        try:
            os.close(held.fd)  # the parent's descriptor still holds the flock
        except OSError:  # pragma: no cover
            pass
    _HOLDS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
