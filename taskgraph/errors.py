"""User-facing failures.

Every problem a user can cause (a broken spec, a missing file, a wrong task name, a corrupted
checkpoint) is raised as a :class:`TaskgraphError` subclass whose message says what went wrong,
where, and what is allowed. The CLI turns these into one paragraph on stderr and exit code 2;
anything else is a bug (exit 1).
"""

from __future__ import annotations

from typing import Any


def validation_problems(exc: Any, *, prefix: str = "", root: str = "", limit: int | None = None) -> str:
    """A pydantic ``ValidationError``'s problems as ``location: message; ...`` — ``prefix`` before every
    dotted location, ``root`` for an empty one, at most ``limit`` problems — for a one-paragraph error."""
    errors = exc.errors()[:limit]
    return "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])) or root}: {e['msg']}" for e in errors)


class TaskgraphError(Exception):
    """Base class of every error caused by user input (exit code 2 in the CLI)."""


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
