"""A run folder's marker: the kinds of folder taskgraph marks, the names it writes inside them, and reading and
writing the marker (:data:`MARKER`) that says whose a folder is; the errors of :mod:`taskgraph.run_folder`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from taskgraph.atomic import WriteError, check_name_length, is_temp, write_text
from taskgraph.errors import TaskgraphError

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
