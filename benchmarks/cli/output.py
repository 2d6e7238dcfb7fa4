"""What every harness command shares: progress on stderr, the markdown on stdout and ``--json`` written atomically,
its target checked before the suite runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from taskgraph.atomic import write_text
from taskgraph.run_folder import check_output_file

Command = Callable[[argparse.Namespace], int]


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def json_checked(command: Command) -> Command:
    """``command`` with its ``--json`` target checked before the suite runs, not after an hour of it."""

    def run(args: argparse.Namespace) -> int:
        if args.json:
            check_output_file(args.json, what="--json")
        return command(args)

    return run


def report(result: dict[str, Any], markdown: str, json_out: str | None) -> int:
    """The suite's markdown on stdout and, with ``--json``, every figure written atomically."""
    print(markdown)
    if json_out:
        write_text(json_out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_out}", file=sys.stderr)
    return 0
