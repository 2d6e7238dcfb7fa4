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
from taskgraph.cli import ExitParser, run_command

PROG = "python -m benchmarks"


def build_parser() -> argparse.ArgumentParser:
    parser = ExitParser(prog=PROG, description="taskgraph's research harness: quality, merging, view and targets.")
    sub = parser.add_subparsers(dest="suite", metavar="SUITE", parser_class=ExitParser)
    sub.required = True
    for module in (quality, merge, view, targets):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness's CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code (taskgraph's contract:
    :mod:`taskgraph.cli.exits`)."""
    return run_command(
        lambda: int((args := build_parser().parse_args(argv)).run(args)),
        bug=f"{PROG} hit an internal error (exit 1); the traceback above says where.",
    )
