"""The per-process registry of embedded-folder locks (shortlist.store.folder_lock), without Chroma.

The lock itself is checked from real other processes (a ``python -c`` that tries ``flock`` on the file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shortlist.errors import StoreError
from shortlist.store import folder_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")

PROBE = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("held")
    else:
        print("free")
    """
)


def locked_elsewhere(folder: Path) -> bool:
    """Whether another process finds the folder's lock file locked."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder / folder_lock.LOCK_FILE)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip() == "held"


def test_holds_are_counted_and_the_last_release_frees_the_folder(tmp_path: Path) -> None:
    assert folder_lock.holders(tmp_path) == 0 and folder_lock.holder_pid(tmp_path) is None
    key = folder_lock.hold(tmp_path)
    assert key == tmp_path.resolve()
    assert folder_lock.hold(tmp_path / "." / "") == key  # the same folder, spelt differently: one entry
    assert folder_lock.holders(tmp_path) == 2
    assert folder_lock.holder_pid(tmp_path) == os.getpid()
    assert locked_elsewhere(tmp_path)
    folder_lock.release(tmp_path)
    assert folder_lock.holders(tmp_path) == 1 and locked_elsewhere(tmp_path)
    folder_lock.release(tmp_path)
    assert folder_lock.holders(tmp_path) == 0 and not locked_elsewhere(tmp_path)
    assert folder_lock.holder_pid(tmp_path) is None  # the pid is wiped on release
    folder_lock.release(tmp_path)  # releasing a folder not held: nothing happens
    assert folder_lock.holders(tmp_path) == 0


def test_a_folder_held_by_another_process_is_refused_with_its_pid_and_chroma_run(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from shortlist.store import folder_lock; folder_lock.hold(sys.argv[1]); print('ready', "
            "flush=True); sys.stdin.read()",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError) as err:
            folder_lock.hold(tmp_path)
        msg = str(err.value)
        assert f"open by process {holder.pid}" in msg
        assert f"chroma run --path {tmp_path.resolve()}" in msg and "--chroma-url" in msg
        assert "-c import sys" in msg  # the holder's command line, from /proc
        assert folder_lock.holders(tmp_path) == 0  # a refused hold is not counted
    finally:
        holder.communicate("")  # EOF: the holder exits, and the OS drops its lock
    folder_lock.hold(tmp_path)
    assert folder_lock.holder_pid(tmp_path) == os.getpid()
    folder_lock.release(tmp_path)


def test_a_forked_child_is_another_process(tmp_path: Path) -> None:
    """A child forked from a holder starts with no holds: its own hold is refused, and it cannot free the parent's."""
    folder_lock.hold(tmp_path)
    try:
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                folder_lock.release(tmp_path)  # not the child's to release
                folder_lock.hold(tmp_path)
                code = 3  # should have been refused
            except StoreError:
                code = 0 if folder_lock.holders(tmp_path) == 0 else 4
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert folder_lock.holders(tmp_path) == 1 and locked_elsewhere(tmp_path)  # still the parent's
    finally:
        folder_lock.release(tmp_path)
    assert not locked_elsewhere(tmp_path)


def test_busy_message_without_a_known_pid(tmp_path: Path) -> None:
    msg = folder_lock.busy_message(tmp_path, None)
    assert msg.startswith(f"The Chroma folder {tmp_path.resolve()} is open by another process;")
    assert "chroma run" in msg and "SHORTLIST_CHROMA_URL" in msg
