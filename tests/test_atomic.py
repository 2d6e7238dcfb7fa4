"""Atomic writes: complete or absent, never half-written, with the usual file mode."""

from __future__ import annotations

import os
import stat

import pytest

from taskgraph.atomic import WriteError, atomic_open, write_text


def test_write_and_mode(tmp_path):
    path = write_text(tmp_path / "sub" / "a.txt", "hello")
    assert path.read_text() == "hello"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert os.listdir(path.parent) == ["a.txt"]


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write(b"half")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_unwritable_targets(tmp_path):
    with pytest.raises(WriteError, match="is a directory"):
        write_text(tmp_path, "x")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError, match="cannot write"):
        write_text(blocker / "below" / "x.txt", "x")
