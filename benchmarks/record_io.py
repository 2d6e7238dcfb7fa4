"""Reading a results record named on a harness command line: a clear one-paragraph error (exit 2 through
:func:`taskgraph.cli.run_command`) for a missing file, one that is not JSON, or one without the fields asked for; and
the command line shared by the scripts that turn a bench's result into ``benchmarks/results/<name>.json``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taskgraph import TaskgraphError
from taskgraph.atomic import write_text
from taskgraph.cli import ExitParser

RESULTS = Path(__file__).resolve().parent / "results"


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


def read_bench_result(path: str | Path, bench: str, needs: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`read_record` of a ``python -m benchmarks <bench>`` result, refusing another bench's."""
    result = read_record(path, f"python -m benchmarks {bench} result", ("bench", *needs))
    if result["bench"] != bench:
        raise RecordError(f"{path}: a {result['bench']!r} result, not a python -m benchmarks {bench} one")
    return result


def record_parser(prog: str, description: str, source: str, source_help: str) -> ExitParser:
    """The command line of a script that writes a record: the result ``source``, ``--name``, ``--command`` (and a
    hidden ``--results`` folder, for the tests)."""
    parser = ExitParser(prog=prog, description=description)
    parser.add_argument(source, type=Path, help=source_help)
    parser.add_argument("--name", required=True, help="the record's name: benchmarks/results/<name>.json")
    parser.add_argument("--command", required=True, help="the command that produced it, as run")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    return parser


def provenance() -> dict[str, Any]:
    """What a record says of its making: the date, the torch and transformers versions, the machine."""
    import torch
    import transformers

    return {
        "date": dt.date.today().isoformat(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "machine": {"python": platform.python_version(), "arch": platform.machine(), "cpus": os.cpu_count()},
    }


def write_record(folder: Path, name: str, record: Any, indent: int = 2) -> str:
    """Write ``record`` to ``folder/<name>.json`` at once (never half-written); its path as a message shows it:
    relative to the working folder where it lies below it."""
    out = folder / f"{name}.json"
    write_text(out, json.dumps(record, indent=indent) + "\n")
    shown = os.path.relpath(out)
    return out.as_posix() if shown.startswith("..") else shown
