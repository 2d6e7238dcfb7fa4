"""Reading the user's files: say what a path really is before reading it, and never block on one.

A spec, a data file, a predict input or a run's file is read only when it is a regular file (a symlink
to one is fine). Anything else gets a message that names what it is — "is a FIFO (named pipe)", "is a
directory", "is a symlink loop", "is a broken symlink to ..." — instead of blocking forever on a pipe
or calling a folder "missing".
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from taskgraph.atomic import file_kind
from taskgraph.errors import TaskgraphError

__all__ = ["check_file", "check_text", "describe"]  # the module's public API


def describe(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as a file ("does not exist", "is a FIFO (named pipe)", ...), or None
    when it is a regular file."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        if p.is_symlink():
            return f"is a broken symlink to {os.readlink(p)!r}"
        return "does not exist"
    except NotADirectoryError:
        return "does not exist (a folder on its path is a file)"
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            return "is a symlink loop"
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    return f"is a {file_kind(mode)}, not a regular file"


def check_file(
    path: str | os.PathLike[str],
    what: str,
    error: type[TaskgraphError] = TaskgraphError,
    *,
    max_bytes: int | None = None,
) -> Path:
    """``path`` if it is a regular file (of at most ``max_bytes``); ``error`` saying what it is otherwise."""
    problem = describe(path)
    if problem is not None:
        raise error(f"{what} {str(path)!r} {problem}")
    if max_bytes is not None:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise error(
                f"{what} {str(path)!r} is {size:,} bytes, more than the {max_bytes:,} bytes taskgraph reads "
                "from such a file"
            )
    return Path(path)


def check_text(text: str, where: str, error: type[TaskgraphError] = TaskgraphError) -> str:
    """``text`` if it is valid Unicode (no lone surrogate such as ``"\\ud800"``, which JSON can carry but no
    tokenizer reads); ``error`` naming the place and the code point otherwise."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(
            f"{where}: the text holds a lone surrogate {text[exc.start]!r} (U+{ord(text[exc.start]):04X}) at "
            f"character {exc.start + 1}, which is not valid Unicode text; fix or drop it"
        ) from None
    return text
