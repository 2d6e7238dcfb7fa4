"""A run folder's exclusive OS lock (:data:`~taskgraph.run_folder.marker.LOCK`, ``flock``): one writer at a time,
re-entrant within a process, dropped by the OS when its holder exits or is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from taskgraph.run_folder.marker import LOCK, OutputPathError, RunLockedError, _resolve

_HELD: dict[str, tuple[int, int]] = {}  # resolved folder -> (fd, depth): re-entrant inside one process


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str], *, what: str = "the folder") -> Iterator[None]:
    """Hold ``folder``'s exclusive lock (the folder must exist); re-entrant within this process.

    Raises:
        RunLockedError: another process holds it; the message names its pid and command.
    """
    key = str(_resolve(folder, what))
    if key in _HELD:
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    fd = _acquire(Path(folder), what)
    _HELD[key] = (fd, 1)
    try:
        yield
    finally:
        del _HELD[key]
        _release(fd)


def _acquire(folder: Path, what: str) -> int:
    path = folder / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise OutputPathError(
            f"{what} {str(folder)!r}: cannot create its lock file {LOCK} ({exc.strerror or exc})"
        ) from None
    if not _try_lock(fd):
        holder = _holder(fd)
        os.close(fd)
        raise RunLockedError(
            f"{what} {str(folder)!r} is in use by another taskgraph process ({holder}); wait for it "
            "to finish or stop it, then run again — nothing was changed"
        )
    os.ftruncate(fd, 0)
    os.write(
        fd,
        json.dumps(
            {
                "pid": os.getpid(),
                "command": " ".join(sys.argv[:6])[:300],
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        ).encode(),
    )
    return fd


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)  # closing the descriptor drops the flock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"pid {int(info['pid'])}, `{str(info.get('command', '?'))[:120]}` since {info.get('since', '?')}"
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "pid unknown"
