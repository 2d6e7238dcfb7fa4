"""What a run folder is, and the rules that keep one — and everything around it — from being lost.

A *run folder* is a folder taskgraph made and marked with :data:`MARKER`, a JSON file holding the
run's identity::

    {"format": "taskgraph-run", "version": 1, "kind": "train", "id": "3f2c...", "name": "quickstart",
     "created": "2026-12-04T15:02:11Z", "taskgraph": "0.1.0"}

Kinds: ``train``, ``adapt`` and ``merge`` make runs; ``sweep`` and ``bench`` make *containers* whose
cells are runs; ``export --format peft`` makes *exports* (``peft-export``), whose marker lists the entries the
export wrote (``"entries"``). The rules every writer follows:

1. Only a marked folder of the writer's own kind is ever replaced (``--overwrite``), and only after
   the new spec and data were checked; an unmarked folder that is not empty is never removed. What
   taskgraph did not write there (``RUN/graph.html``: :func:`foreign_entries`) is kept and named.
2. A writer holds the folder's exclusive OS lock (:data:`LOCK`, ``flock``) while it writes into it; a
   second writer gets :class:`RunLockedError` naming the holder's pid. The OS drops the lock when the
   holder exits or is killed, so a lock never goes stale.
3. An output folder is never ``""``, the current directory or one above it, a source, or a folder above
   a source; it never lies inside another run (containers hold runs).
4. No command writes inside a run it did not create: a new file directly in a run folder
   (``RUN/graph.html``) is fine, the run's own entries (:func:`own_entries`: :data:`RUN_ENTRIES`, and the
   entries an export lists) and anything below them (``RUN/model/...``) are refused, and so is a target that
   is one of the command's sources.
5. Temporary files carry their writer's pid (:mod:`taskgraph.atomic`); the next writer removes those whose
   process is gone, and puts back a folder a killed writer had set aside (:func:`claim_output_run`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.atomic import (
    WriteError,
    check_name_length,
    clean_stale,
    file_kind,
    is_stale,
    is_temp,
    resolve_target,
    write_text,
)
from taskgraph.errors import TaskgraphError, opt

__all__ = [  # the module's public API: what a tool beside taskgraph needs to write its own folders safely
    "MARKER",
    "OutputPathError",
    "RunLockedError",
    "check_output_file",
    "claim_container",
    "kept_note",
    "read_marker",
]

MARKER = ".taskgraph-run.json"
LOCK = ".taskgraph.lock"
FORMAT, VERSION = "taskgraph-run", 1
RUN_KINDS = ("train", "adapt", "merge")
CONTAINER_KINDS = ("sweep", "bench")
EXPORT_KINDS = ("peft-export",)
KINDS = RUN_KINDS + CONTAINER_KINDS + EXPORT_KINDS

# Every name taskgraph itself writes directly inside a run or container folder: never another command's target.
RUN_ENTRIES = frozenset(
    {
        MARKER,
        LOCK,
        "spec.yaml",
        "log.jsonl",
        "train.json",
        "dependencies.log",  # what the dependencies said while the command ran (taskgraph.dependency_log)
        "checkpoints",
        "best",
        "model",
        "plain",
        "plots",
        "tensorboard",
        "adapt.json",
        "merge.json",
        "cells",
        "sweep.md",
        "sweep.json",
        "quality.json",
        "quality.md",
        "planted",
        "real",
    }
)


class OutputPathError(TaskgraphError):
    """An output path would destroy or write into something it must not (a source, a run, the cwd, ...)."""


class RunLockedError(TaskgraphError):
    """Another taskgraph process is writing into the folder."""


# ----------------------------------------------------------------------------- the marker
def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of ``folder`` (None when it has none).

    Raises:
        OutputPathError: the marker exists but is not one taskgraph wrote (unreadable, wrong format or kind).
    """
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > 64 * 1024:
            raise ValueError("larger than 64 KiB")
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("kind") not in KINDS:
            raise ValueError(f"format must be {FORMAT!r} and kind one of {list(KINDS)}")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OutputPathError(
            f"{path}: not a taskgraph run marker ({exc}); the folder's owner is unknown, so "
            "taskgraph will neither replace it nor write into it"
        ) from None
    return record


def write_marker(folder: str | os.PathLike[str], kind: str, name: str = "", **extra: Any) -> dict[str, Any]:
    """Mark ``folder`` as a taskgraph folder of ``kind`` with a new identity; returns the marker."""
    from taskgraph import __version__

    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; choose from {list(KINDS)}")
    record = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "id": uuid.uuid4().hex,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "taskgraph": __version__,
        **extra,
    }
    write_text(Path(folder) / MARKER, json.dumps(record, indent=2) + "\n")
    return record


def kind_title(kind: str) -> str:
    """How a message names a marked folder of ``kind``: "train run", "sweep run", "PEFT export"."""
    return "PEFT export" if kind in EXPORT_KINDS else f"{kind} run"


def own_entries(marker: dict[str, Any]) -> frozenset[str]:
    """The names taskgraph writes directly inside the folder ``marker`` marks: :data:`RUN_ENTRIES`, and for an
    export the entries its marker lists."""
    listed = marker.get("entries")
    if marker["kind"] not in EXPORT_KINDS or not isinstance(listed, list):
        return RUN_ENTRIES
    return RUN_ENTRIES | {name for name in listed if isinstance(name, str)}


def foreign_entries(folder: Path, marker: dict[str, Any]) -> list[str]:
    """The entries directly in the marked ``folder`` that taskgraph did not write there (sorted): neither its
    own (:func:`own_entries`) nor a temp file or staging folder of taskgraph's atomic writer."""
    own = own_entries(marker)
    return sorted(p.name for p in folder.iterdir() if p.name not in own and not is_temp(p))


def enclosing_run(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]] | None:
    """The nearest marked folder strictly above ``path`` and its marker (None when there is none)."""
    resolved = _resolve(path, "path")
    for parent in resolved.parents:
        if (parent / MARKER).is_file():
            marker = read_marker(parent)
            assert marker is not None
            return parent, marker
    return None


# ----------------------------------------------------------------------------- the lock
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


# ----------------------------------------------------------------------------- output paths
@dataclass(frozen=True)
class OutputFolder:
    """A checked output folder: where it is, and the marker it holds if it exists already."""

    path: Path
    exists: bool
    marker: dict[str, Any] | None


def check_output_folder(
    out: str | os.PathLike[str], *, kind: str, what: str = opt("out"), sources: Iterable[str | os.PathLike[str]] = ()
) -> OutputFolder:
    """Check that a ``kind`` writer may create (or, later, replace) the folder ``out``.

    Refused: an empty path; the current directory or a folder above it; a source, a folder above a
    source; a path under a regular file; a file or special file at ``out``; a folder inside another run
    (a container's cells are fine); a marked folder of another kind. Whether an existing folder may be
    replaced is the writer's call (``--overwrite``, a resume), with the marker returned here.

    Raises:
        OutputPathError: saying what ``out`` is and what to give instead.
    """
    if str(out).strip() == "":
        raise OutputPathError(f"{what} is empty; give a folder for the {kind} output, e.g. runs/my-{kind}")
    folder = _resolve(out, what)
    here = f"{what} {str(out)!r}"
    cwd = Path.cwd().resolve()
    if folder == cwd or folder in cwd.parents:
        raise OutputPathError(
            f"{here} is the current directory or a folder above it; taskgraph writes a {kind} "
            "into a folder of its own (e.g. runs/x) and would never replace the one you work in"
        )
    for source in sources:
        src = _resolve(source, "source")
        if folder == src or folder in src.parents:
            raise OutputPathError(
                f"{here} is {'the same as' if folder == src else 'a folder above'} {str(source)!r}, "
                f"which this command reads; give a separate folder for the output"
            )
    _check_parents_are_folders(folder, here)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{here} is a {file_kind(folder.stat().st_mode)}; give a folder for the output")
    enclosing = enclosing_run(folder)
    if enclosing is not None and enclosing[1]["kind"] in RUN_KINDS:
        raise OutputPathError(
            f"{here} lies inside the taskgraph {enclosing[1]['kind']} run {str(enclosing[0])!r}; "
            "a run's folder holds only what that run wrote — give a folder outside it"
        )
    marker = read_marker(folder) if folder.is_dir() else None
    if marker is not None and marker["kind"] != kind:
        raise OutputPathError(
            f"{here} holds a taskgraph {kind_title(marker['kind'])}, which a {kind} never replaces; give a "
            "new folder (nothing was changed)"
        )
    return OutputFolder(folder, folder.exists(), marker)


def check_output_file(
    out: str | os.PathLike[str], *, what: str = opt("out"), sources: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Check that a command may write the file ``out``; returns the file that would be replaced.

    Refused: not a file path, a directory, a FIFO / socket / device (a symlink is followed to its
    destination, which is then checked), one of the command's sources, a run's own files or anything
    inside them (a new file directly in a run folder is fine), a path under a regular file.

    Raises:
        OutputPathError: saying what ``out`` is.
    """
    here = f"{what} {str(out)!r}"
    try:
        target = resolve_target(out)
    except WriteError as exc:
        raise OutputPathError(f"{here}: {str(exc).split(': ', 1)[-1]}") from None
    resolved = _resolve(target, what)
    _check_parents_are_folders(resolved, here)
    for source in sources:
        src = _resolve(source, "source")
        inside = src in resolved.parents and read_marker(src) is None  # a marked run: rule 4 below decides
        if resolved == src or inside:
            raise OutputPathError(
                f"{here} is {'the same file as' if resolved == src else 'inside'} {str(source)!r}, "
                "which this command reads; write the output somewhere else"
            )
    enclosing = enclosing_run(resolved)
    if enclosing is not None:
        run, marker = enclosing
        top = resolved.relative_to(run).parts[0]
        if resolved.parent != run or top in own_entries(marker):
            raise OutputPathError(
                f"{here} would write into {str(run / top)!r}, which belongs to the taskgraph "
                f"{kind_title(marker['kind'])} {str(run)!r}; write the output outside the run's own files "
                "(a new file directly in the run folder, or another folder)"
            )
    return resolved


def _check_parents_are_folders(path: Path, here: str) -> None:
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise OutputPathError(
                f"{here} lies under {str(parent)!r}, which is a {file_kind(parent.stat().st_mode)}, not a folder"
            )


def _resolve(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` made absolute with symlinks followed (a loop is an error, a missing tail is fine; a name longer
    than the file system allows is an error)."""
    try:
        check_name_length(path, what)
    except WriteError as exc:
        raise OutputPathError(exc.args[0]) from None
    try:
        return Path(path).expanduser().resolve(strict=False)
    except (RuntimeError, OSError) as exc:
        raise OutputPathError(f"{what} {str(path)!r}: cannot resolve it ({exc}); a symlink loop?") from None


def holds_entries(folder: Path, ignore: Iterable[str] = (MARKER, LOCK)) -> list[str]:
    """The names in ``folder`` other than ``ignore`` and stale temps (sorted)."""
    skip = set(ignore)
    return sorted(p.name for p in folder.iterdir() if p.name not in skip and not is_stale(p))


def clear_run(folder: Path) -> list[str]:
    """Empty the run ``folder`` for a new run in place; returns the names of what it kept there.

    Removed: the run's own entries (:data:`RUN_ENTRIES`; the marker last, so a crash midway leaves the folder
    marked) and the temps of writers that are gone. Kept: the lock, the temps of live writers, and what
    taskgraph did not write there (a ``graph.html`` exported into the run), whose names are returned.
    """
    import shutil

    marker = read_marker(folder)
    own = RUN_ENTRIES if marker is None else own_entries(marker)
    kept = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name == MARKER):
        if entry.name == LOCK or (is_temp(entry) and not is_stale(entry)):
            continue  # the lock held now; a live writer's temp
        if entry.name not in own and not is_temp(entry):
            kept.append(entry.name)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return sorted(kept)


# ----------------------------------------------------------------------------- runs built aside, swapped in
def check_replaceable(checked: OutputFolder, *, kind: str, overwrite: bool, what: str = opt("out")) -> None:
    """A new ``kind`` output needs an absent or empty folder, or (``overwrite``) a folder marked as a ``kind``.

    Raises:
        OutputPathError: the folder holds something else (nothing was changed).
    """
    folder = checked.path
    if not folder.is_dir():
        return
    held = holds_entries(folder)
    if not held or (overwrite and checked.marker is not None and checked.marker["kind"] == kind):
        return
    if overwrite:
        raise OutputPathError(
            f"{opt('overwrite')}: {what} {str(folder)!r} holds {', '.join(held[:6])} but is not a folder "
            f"taskgraph marked as a {kind} run (no {MARKER}); {opt('overwrite')} replaces only taskgraph's "
            "own runs, so nothing was removed — give a new folder"
        )
    also = f" or pass {opt('overwrite')} to replace it" if checked.marker is not None else ""
    raise OutputPathError(
        f"{what} {str(folder)!r} already exists and holds {', '.join(held[:6])}; give a new "
        f"folder{also} (nothing was changed)"
    )


@contextlib.contextmanager
def claim_output_run(
    out: str | os.PathLike[str],
    *,
    kind: str,
    sources: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
    what: str = opt("out"),
    replaceable: Callable[[OutputFolder], None] | None = None,
) -> Iterator[Path]:
    """Claim the folder ``out`` for a ``kind`` run that is built in a staging folder and swapped in by
    :func:`publish_run`: put back a folder a killed writer had set aside there, check it
    (:func:`check_output_folder`, then ``replaceable``: by default :func:`check_replaceable`), create it if
    absent and hold its lock until the block ends. A folder this created is removed again if the block fails.

    Raises:
        OutputPathError, RunLockedError, or what ``replaceable`` raises: before anything was written.
    """
    if replaceable is None:
        replaceable = functools.partial(check_replaceable, kind=kind, overwrite=overwrite, what=what)
    resolved = _resolve(out, what)
    clean_stale(resolved.parent, resolved.name)  # a folder set aside by a writer killed mid-swap goes back
    checked = check_output_folder(out, kind=kind, what=what, sources=sources)
    replaceable(checked)
    folder, created = checked.path, not checked.path.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with run_lock(folder, what=what):
            replaceable(check_output_folder(out, kind=kind, what=what, sources=sources))  # another writer first?
            yield folder
    except BaseException:
        if created and folder.is_dir() and not holds_entries(folder, ignore=(LOCK,)):
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        raise


def publish_run(staging: Path, out: Path, *, kind: str, name: str = "", **identity: Any) -> list[str]:
    """Mark the finished ``staging`` folder as a ``kind`` run and swap it in at ``out`` (held by
    :func:`claim_output_run`); returns the names of what it kept from the folder it replaced.

    What taskgraph did not write in the old folder (:func:`foreign_entries`) is linked into ``staging`` (copied
    where the file system cannot link) before the swap, so that a crash at any moment leaves it in the old
    folder or in the new one.

    Raises:
        OutputPathError: such an entry can be neither linked nor copied (the old folder is unchanged).
    """
    from taskgraph.atomic import replace_directory

    marker = read_marker(out) if out.is_dir() else None
    kept = [] if marker is None else foreign_entries(out, marker)
    for entry in kept:
        try:
            _link_tree(out / entry, staging / entry)
        except OSError as exc:
            raise OutputPathError(
                f"{str(out / entry)!r} is not taskgraph's, and the new {kind_title(kind)} cannot keep it "
                f"({exc.strerror or exc}); move it out of {str(out)!r} and run again (nothing was changed)"
            ) from None
    write_marker(staging, kind, name, **identity)
    replace_directory(staging, out)
    return kept


def kept_note(kept: Sequence[str], folder: str | os.PathLike[str], shown: int = 10) -> str:
    """The line naming what a replacement kept in ``folder`` because taskgraph did not write it."""
    names = ", ".join(kept[:shown]) + (f", ... ({len(kept) - shown} more)" if len(kept) > shown else "")
    return (
        f"kept {len(kept)} {'file' if len(kept) == 1 else 'files'} taskgraph did not write in {folder}: {names} "
        "(left as they were: the new run did not update them)"
    )


def _link_tree(entry: Path, into: Path) -> None:
    """Hard-link ``entry`` (a file, a symlink, or a folder file by file) at ``into``; copy what cannot be linked."""
    import shutil

    if entry.is_dir() and not entry.is_symlink():
        shutil.copytree(entry, into, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(entry, into)


def _link_or_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    import shutil

    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


@contextlib.contextmanager
def claim_container(
    out: str | os.PathLike[str],
    *,
    kind: str,
    sources: Iterable[str | os.PathLike[str]] = (),
    legacy: Iterable[str] = (),
    what: str = opt("out"),
) -> Iterator[Path]:
    """Open the container folder ``out`` (a sweep or bench folder whose cells are runs): new, or one of the
    same ``kind`` to complete. It is marked on first use and locked while the block runs. An unmarked folder
    that is not empty is refused, unless it holds one of the ``legacy`` entries (a container written by
    taskgraph 0.1, before markers).

    Raises:
        OutputPathError, RunLockedError: before anything was written.
    """
    checked = check_output_folder(out, kind=kind, what=what, sources=sources)
    folder = checked.path
    if folder.is_dir() and checked.marker is None:
        held = holds_entries(folder)
        if held and not set(held) & set(legacy):
            raise OutputPathError(
                f"{what} {str(out)!r} holds {', '.join(held[:6])} and is not a taskgraph {kind} "
                "folder; give a new or empty folder (nothing was changed)"
            )
    folder.mkdir(parents=True, exist_ok=True)
    with run_lock(folder, what=what):
        if read_marker(folder) is None:
            write_marker(folder, kind)
        yield folder
