"""The ``taskgraph`` command line. Each subcommand lives in its own file and calls the public API.

Exit codes: 0 success; 2 bad input (one clear paragraph on stderr, never a traceback); 1 a bug.

The terminal shows taskgraph's own lines: the dependencies' progress bars are off and their known-benign notes go to
``RUN/dependencies.log`` of a command that writes a run, nowhere otherwise (:mod:`taskgraph.dependency_log`);
``--verbose`` (any command) or ``TASKGRAPH_VERBOSE=1`` shows them as they print.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from taskgraph.cli.exits import ExitParser, UsageError, run_command
from taskgraph.dependency_log import keep_in_run, quiet_dependencies
from taskgraph.errors import TaskgraphError, TaskgraphWarning

__all__ = ["ExitParser", "UsageError", "build_parser", "main", "run_command"]  # also for command lines built on it

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from taskgraph.cli import adapt, attach, bench, data_cmd, eval_cmd, export, merge, predict, sweep, train, validate

    parser = ExitParser(prog="taskgraph", description="Composable multi-task fine-tuning with graph-routed adapters.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ExitParser)
    for module in (validate, data_cmd, train, predict, eval_cmd, adapt, attach, merge, sweep, export, bench):
        module.add_parser(sub)
    _add_verbose(parser, default=False)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, *, default: bool | str) -> None:
    """``--verbose`` on ``parser`` and every subcommand below it (``taskgraph train ... --verbose`` and ``taskgraph
    --verbose train ...`` both work: a subcommand's flag has no default, so it never overrides the top one)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help="show the dependencies' own output (transformers' load reports and progress bars), as "
        "TASKGRAPH_VERBOSE=1 does",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # an alias maps to the same parser
                _add_verbose(child, default=argparse.SUPPRESS)


def _warnings_shown_as_lines(previous: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning``: a :class:`TaskgraphWarning` as one ``warning: ...`` line on stderr, any
    other warning handed to ``previous`` (Python's own display, or a test's recorder)."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, TaskgraphWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    return show


@contextlib.contextmanager
def _threads_restored() -> Iterator[None]:
    """A command may set torch's thread count (``--threads``); a caller's process gets its own back after."""
    before = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    try:
        yield
    finally:
        if before is not None and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(before)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    with warnings.catch_warnings():
        warnings.showwarning = _warnings_shown_as_lines(warnings.showwarning)
        warnings.simplefilter("default", TaskgraphWarning)  # each distinct warning once
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()

    def command() -> int:
        args = parser.parse_args(argv)
        if args.version:
            from taskgraph import __version__

            print(f"taskgraph {__version__}")
            return 0
        if args.command is None:
            parser.print_help()
            return 2
        with _threads_restored(), quiet_dependencies(verbose=args.verbose or None) as log:
            started = time.time()
            code = int(args.run(args))
            if code == 0 and log is not None:  # a run this command wrote keeps what the dependencies said
                keep_in_run(log, getattr(args, "out", None), started)
            return code

    return run_command(
        command, bug="taskgraph hit an internal error (exit 1); please report it with the traceback above."
    )
