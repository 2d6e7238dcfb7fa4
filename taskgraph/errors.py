"""User-facing failures.

Every problem a user can cause (a broken spec, a missing file, a wrong task name, a corrupted
checkpoint) is raised as a :class:`TaskgraphError` subclass whose message says what went wrong,
where, and what is allowed. The CLI turns these into one paragraph on stderr and exit code 2;
anything else is a bug (exit 1).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [  # the module's public API; the option helpers are internal
    "CheckpointError",
    "DataError",
    "DataWarning",
    "ExportError",
    "GraphError",
    "ModelError",
    "SpecError",
    "TaskgraphError",
    "TaskgraphWarning",
    "validation_problems",
]


def validation_problems(exc: Any, *, prefix: str = "", root: str = "", limit: int | None = None) -> str:
    """A pydantic ``ValidationError``'s problems as ``location: message; ...`` — ``prefix`` before every
    dotted location, ``root`` for an empty one, at most ``limit`` problems — for a one-paragraph error (another
    exception: its message)."""
    if not callable(getattr(exc, "errors", None)):
        return str(exc)
    errors = exc.errors()[:limit]
    return "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])) or root}: {e['msg']}" for e in errors)


# An option named in a message, as each audience writes it: ``opt("resume")`` reads "resume=True" to Python code
# and "--resume" on the command line (the CLI prints :meth:`TaskgraphError.cli_message`).
OPTIONS: dict[str, tuple[str, str]] = {
    "out": ("out_dir", "--out"),
    "resume": ("resume=True", "--resume"),
    "overwrite": ("overwrite=True", "--overwrite"),
    "device": ("device", "--device"),
    "device-cpu": ('device="cpu"', "--device cpu"),
    "relate": ("relate", "--relate"),
    "lr": ("lr", "--lr"),
    "mode": ("mode", "--mode"),
    "set": ("the spec", "--set"),
    "max-steps": ("max_steps", "--max-steps"),
    "split": ("split", "--split"),
}
_OPTION = re.compile(r"⟨([a-z-]+)⟩")


def opt(name: str) -> str:
    """A marker for option ``name`` (a key of :data:`OPTIONS`) inside an error message."""
    if name not in OPTIONS:
        raise KeyError(f"unknown option {name!r}; add it to taskgraph.errors.OPTIONS")
    return f"⟨{name}⟩"


def render_options(message: str, *, cli: bool) -> str:
    """``message`` with each :func:`opt` marker written for Python code or for the command line."""
    return _OPTION.sub(lambda m: OPTIONS[m.group(1)][1 if cli else 0] if m.group(1) in OPTIONS else m.group(0), message)


class TaskgraphError(Exception):
    """Base class of every error caused by user input (exit code 2 in the CLI).

    A message names options with :func:`opt`: ``str(error)`` reads as Python code passes them
    (``resume=True``), :meth:`cli_message` as the command line does (``--resume``).
    """

    def __str__(self) -> str:
        return render_options(super().__str__(), cli=False)

    def cli_message(self) -> str:
        """The message for the command line: options written as flags."""
        return render_options(super().__str__(), cli=True)


class SpecError(TaskgraphError):
    """A task-graph spec is unreadable or invalid.

    Args:
        problems: one line per problem, each ``file:line: dotted.path: message``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = "invalid spec" if n == 1 else f"invalid spec ({n} problems)"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class GraphError(TaskgraphError):
    """A task-graph operation names an unknown task, a self-relation, a bad weight, ..."""


class DataError(TaskgraphError):
    """A data source is missing, malformed or inconsistent with its task."""


class ModelError(TaskgraphError):
    """A model, adapter layout or saved run does not match what was asked for."""


class CheckpointError(TaskgraphError):
    """A checkpoint is missing, truncated, corrupted, or belongs to another spec."""


class ExportError(TaskgraphError):
    """An export cannot be written (unknown format, unwritable path, ...)."""


class TaskgraphWarning(UserWarning):
    """Base class of the warnings about user input that do not stop a command (``warning: ...`` on stderr)."""


class DataWarning(TaskgraphWarning):
    """Data that can be used but is likely a mistake (a task whose training split holds one label only)."""
