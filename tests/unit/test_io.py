"""shortlist._io: atomic file and folder replacement, and the inter-process lock (real files in tmp_path)."""

from __future__ import annotations

import multiprocessing
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from shortlist._io import atomic_dir, atomic_path, atomic_write, file_lock


def test_atomic_write_creates_folder_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    atomic_write(target, '{"n": 1}')
    assert target.read_text() == '{"n": 1}'
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_path_failure_keeps_old_file_and_removes_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target, suffix=".onnx.tmp") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".onnx.tmp")
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "index"
    with atomic_dir(target) as tmp:
        (tmp / "a.json").write_text("1")
    assert [p.name for p in target.iterdir()] == ["a.json"]
    with atomic_dir(target) as tmp:
        (tmp / "b.json").write_text("2")
    assert [p.name for p in target.iterdir()] == ["b.json"]
    with pytest.raises(ValueError, match="bad"), atomic_dir(target) as tmp:
        (tmp / "c.json").write_text("3")
        raise ValueError("bad")
    assert [p.name for p in target.iterdir()] == ["b.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def _hold(lock_path: str, seconds: float, ready: Any) -> None:
    with file_lock(lock_path):
        ready.set()
        time.sleep(seconds)


def test_file_lock_excludes_another_process(tmp_path: Path) -> None:
    lock = tmp_path / ".export.lock"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(lock), 1.5, ready))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(TimeoutError):  # filelock.Timeout is a TimeoutError
            file_lock(lock, timeout=0.1).acquire()
        with file_lock(lock, timeout=60):
            pass  # acquired once the other process let go
    finally:
        proc.join(60)
    assert proc.exitcode == 0
