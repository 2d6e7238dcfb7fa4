"""Where a command may write, and how a run is claimed, built aside and swapped in.

:func:`check_output_folder` / :func:`check_output_file` refuse an output that would destroy or write into something
it must not; :func:`claim_output_run` claims and locks a run's folder, :func:`publish_run` marks the finished
staging folder and swaps it in, keeping what taskgraph did not write; :func:`claim_container` opens a sweep or
bench folder whose cells are runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.atomic import WriteError, clean_stale, file_kind, is_stale, is_temp, resolve_target
from taskgraph.errors import opt
from taskgraph.run_folder.lock import run_lock
from taskgraph.run_folder.marker import (
    LOCK,
    MARKER,
    RUN_ENTRIES,
    RUN_KINDS,
    OutputPathError,
    _resolve,
    enclosing_run,
    foreign_entries,
    kind_title,
    own_entries,
    read_marker,
    write_marker,
)


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
