"""Atomic file writes: a file the program writes is either complete or absent, never half-written.

Temporary files and staging folders sit beside their target and carry the writer's identity in their
name — ``.<name>.<host>-<pid>-<random>.tmp`` for a file, ``.<name>.stage-<host>-<pid>-<random>`` and
``.<name>.old-<host>-<pid>-<random>`` for a folder — so that a later writer can tell one left by a
process that is gone (``kill -9``, a power cut) from one still being written: :func:`clean_stale`
removes the first kind (putting back a folder that was set aside and never replaced) and leaves the
second alone. Where the target's name is so long that a temp name would pass the file system's limit on
one name (255 bytes on most), ``<name>`` is shortened to its first bytes and a hash of the whole name
(:func:`temp_stem`); a target whose own name passes the limit is refused before anything is written.

Targets are checked before anything is written: a symlink is written *through* (its destination is
replaced, the link stays), a directory, FIFO, socket or device node is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from taskgraph.errors import TaskgraphError

__all__ = [  # the module's public API: whole-or-absent writes; the temp-file machinery is internal
    "WriteError",
    "atomic_open",
    "write_bytes",
    "write_text",
]


class WriteError(TaskgraphError):
    """The output path cannot be written."""


HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
_ACTIVE: set[str] = set()  # temp paths this process is writing right now


NAME_MAX = 255  # bytes in one file name where the file system does not say (ext4, xfs, btrfs, APFS)
# What a temp name adds to its stem at most: ".", ".stage-", the host tag, "-", a pid (10 digits), "-", the
# 8 random characters. A file's ".<stem>.<host>-<pid>-<random>.tmp" is 2 bytes shorter.
TEMP_EXTRA = len("..stage-") + len(HOST) + 1 + 10 + 1 + 8
_SHORT_PREFIX = 64  # bytes of a long name kept in front of its hash


def _owner_tag() -> str:
    return f"{HOST}-{os.getpid()}-"


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, the file system of ``folder`` (or its nearest existing parent) allows."""
    for candidate in (folder, *folder.parents):
        try:
            return int(os.pathconf(candidate, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):
            continue
    return NAME_MAX


def _name_bytes(name: str) -> int:
    return len(os.fsencode(name))


def temp_stem(name: str, limit: int = NAME_MAX) -> str:
    """The part of a temp name that names its target ``name``: ``name`` itself, or, where a temp name would be
    longer than ``limit`` bytes, ``name``'s first bytes (whole characters), ``~`` and 16 hex digits of its
    sha256 — the same for every writer, so a later one still finds the temps of this target."""
    if _name_bytes(name) + TEMP_EXTRA <= limit:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    prefix = os.fsencode(name)[:_SHORT_PREFIX].decode("utf-8", "ignore")
    return f"{prefix}~{digest}"


def check_name_length(path: str | os.PathLike[str], what: str = "the path") -> None:
    """Refuse a path one of whose names is longer than its file system allows.

    Raises:
        WriteError: naming the part, its length in bytes and the limit.
    """
    target = Path(path)
    for part in target.parts:
        size = _name_bytes(part)
        if size <= NAME_MAX:
            continue
        limit = name_max(Path(os.path.abspath(target)).parent)
        if size > limit:
            raise WriteError(
                f"cannot write {_shortened(str(path), 80)!r}: the name {_shortened(part, 48)!r} is {size} bytes "
                f"long, and the file system allows at most {limit} in one name; give {what} a shorter name "
                "(nothing was written)"
            )


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else f"{text[: width // 2]}...{text[-(width // 3) :]}"


def file_kind(mode: int) -> str:
    """A word for what a ``st_mode`` is: "regular file", "directory", "FIFO", ..."""
    for test, word in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISLNK, "symlink"),
    ):
        if test(mode):
            return word
    return "special file"


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or a symlink's final destination.

    Raises:
        WriteError: a symlink loop, a directory, or anything that is not a regular file (FIFO, socket,
            device node): taskgraph writes regular files only.
    """
    target = Path(path)
    if str(path) == "" or target.name in ("", ".", ".."):
        raise WriteError(f"cannot write {str(path)!r}: it is not a file path")
    check_name_length(target, "the file")
    if target.is_symlink():
        try:
            target = target.resolve(strict=False)
        except (RuntimeError, OSError):
            raise WriteError(f"cannot write {str(path)!r}: it is a symlink loop") from None
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except NotADirectoryError:
        raise WriteError(f"cannot write {str(path)!r}: a folder on its path is a file") from None
    except OSError as exc:
        raise WriteError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise WriteError(f"cannot write {str(path)!r}: it is a directory; give a file path")
    if not stat.S_ISREG(mode):
        raise WriteError(
            f"cannot write {str(path)!r}: it is a {file_kind(mode)}, not a regular file; taskgraph "
            "replaces regular files only (nothing was written)"
        )
    return target


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it was. A symlink at
    ``path`` is written through (see :func:`resolve_target`).
    """
    target = resolve_target(path)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(parent, target.name)
        stem = temp_stem(target.name, name_max(parent))
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{_owner_tag()}", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise WriteError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    _ACTIVE.add(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode of a new file
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        _ACTIVE.discard(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------- folders
def staging_dir(target: str | os.PathLike[str]) -> Path:
    """A new, empty staging folder beside ``target`` (same file system) for :func:`replace_directory`.

    Its mode is that of any new folder (``mkdtemp`` makes it private).

    Raises:
        WriteError: ``target``'s name is too long for its file system.
    """
    target = Path(target)
    check_name_length(target, "the folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target.parent, target.name)
    stem = temp_stem(target.name, name_max(target.parent))
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}.stage-{_owner_tag()}", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    _ACTIVE.add(str(staging))
    return staging


def replace_directory(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``staging`` to ``target``, replacing any folder there, with two renames.

    ``staging`` must sit beside ``target`` (same file system; :func:`staging_dir` makes one). The old
    folder is first renamed aside, then removed only after ``staging`` took its place: a reader sees
    the old folder or the new one, never a half-written mix. If the second rename fails the old folder
    is put back. ``staging`` is removed if anything fails.
    """
    staging, target = Path(staging), Path(target)
    old: Path | None = None
    try:
        if target.exists():
            stem = temp_stem(target.name, name_max(target.parent))
            old = Path(tempfile.mkdtemp(prefix=f".{stem}.old-{_owner_tag()}", dir=target.parent))
            _ACTIVE.add(str(old))
            os.replace(target, old / target.name)
        try:
            os.replace(staging, target)
        except OSError:
            if old is not None and not target.exists():
                os.replace(old / target.name, target)
            raise
        fsync_dir(target.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
            _ACTIVE.discard(str(old))
        _ACTIVE.discard(str(staging))
    return target


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort: not every file system supports it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- stale temps
_RANDOM = r"[a-z0-9_]{8}"  # what mkstemp / mkdtemp put between prefix and suffix
_TEMP_FILE = re.compile(rf"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{{6}})-(?P<pid>\d+)-{_RANDOM}\.tmp$")
_TEMP_DIR = re.compile(rf"^\.(?P<name>.+)\.(?P<kind>stage|old)-(?P<host>[0-9a-f]{{6}})-(?P<pid>\d+)-{_RANDOM}$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _temp_match(path: Path) -> re.Match[str] | None:
    """The name match of a temp file / staging folder of ours at ``path`` (the kind must fit the entry)."""
    if path.is_symlink():
        return None
    if path.is_dir():
        return _TEMP_DIR.match(path.name)
    return _TEMP_FILE.match(path.name) if path.is_file() else None


def is_temp(path: Path) -> bool:
    """Whether ``path`` is named as a temp file or staging folder of taskgraph's writers (live or not)."""
    return _temp_match(path) is not None


def is_stale(path: Path) -> bool:
    """Whether ``path`` is a temp file or staging folder left by a writer on this host that is gone."""
    match = _temp_match(path)
    if match is None or match.group("host") != HOST:
        return False  # not ours, or another machine's writer on a shared file system: leave it
    if str(path) in _ACTIVE:
        return False
    pid = int(match.group("pid"))
    return pid == os.getpid() or not _alive(pid)


def _set_aside(entry: Path, stem: str) -> Path | None:
    """The folder a ``.<stem>.old-...`` folder holds: the one entry whose name is, or shortens to, ``stem``."""
    inner = entry / stem
    if inner.exists():
        return inner
    limit = name_max(entry.parent)
    held = [p for p in entry.iterdir() if temp_stem(p.name, limit) == stem]
    return held[0] if len(held) == 1 else None


def clean_stale(folder: Path, name: str | None = None) -> list[str]:
    """Remove the temps in ``folder`` (of target ``name`` only, when given) whose writer is gone.

    A folder set aside by :func:`replace_directory` (``.<name>.old-...``) whose target is missing is put
    back in its place instead. Returns the names removed or restored.
    """
    done: list[str] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return done
    stems = None if name is None else {name, temp_stem(name, name_max(folder))}
    for entry in entries:
        match = _temp_match(entry)
        if match is None or (stems is not None and match.group("name") not in stems) or not is_stale(entry):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir():
                inner = _set_aside(entry, match.group("name")) if match.group("kind") == "old" else None
                if inner is not None and not (folder / inner.name).exists():
                    os.replace(inner, folder / inner.name)
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
            done.append(entry.name)
    return done
