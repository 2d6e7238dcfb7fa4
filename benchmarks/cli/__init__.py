"""``python -m benchmarks SUITE ...``: the research harness's command line, run from a checkout of the repository.

=============  ==========================================================================================
``quality``    every router on the same data and budget, then few-/zero-shot adaptation (:mod:`benchmarks.quality`)
``merge``      fold → merge against single-task and trained-together models (:mod:`benchmarks.merging`)
``view``       time to interactive of the HTML graph view in headless Chromium (:mod:`benchmarks.view`)
``targets``    the research targets judged on a ``taskgraph bench speed|lm|scale --json`` record
               (:mod:`benchmarks.targets`)
=============  ==========================================================================================

Exit codes as taskgraph's own: 0 success; 2 bad input (one clear paragraph on stderr, never a traceback); 1 a bug.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from benchmarks.cli import merge, quality, targets, view
from taskgraph import TaskgraphError

PROG = "python -m benchmarks"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors end in exit code 2 with one message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise _UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="taskgraph's research harness: quality, merging, view and targets.")
    sub = parser.add_subparsers(dest="suite", metavar="SUITE", parser_class=_Parser)
    sub.required = True
    for module in (quality, merge, view, targets):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness's CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TaskgraphError as exc:
        print(f"error: {exc.cli_message()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: show everything
        traceback.print_exc()
        print(f"{PROG} hit an internal error (exit 1); the traceback above says where.", file=sys.stderr)
        return 1
