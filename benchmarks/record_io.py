"""Reading a results record named on a harness command line: a clear one-paragraph error (exit 2 through
:func:`taskgraph.cli.run_command`) for a missing file, one that is not JSON, or one without the fields asked for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taskgraph import TaskgraphError


class RecordError(TaskgraphError):
    """A record that cannot be read, or is not the kind of record the command reads."""


def read_record(path: str | Path, what: str, needs: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON object at ``path``, holding every key of ``needs``; ``what`` names the record in the error."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"{path}: cannot read the {what}: {exc}") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a {what} is a JSON object, got {type(data).__name__}")
    missing = [key for key in needs if key not in data]
    if missing:
        raise RecordError(f"{path}: not a {what} (no {', '.join(missing)}; it needs {', '.join(needs)})")
    return data
