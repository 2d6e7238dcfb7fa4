"""The command line's exit-code contract, for ``taskgraph`` and for any command line built on taskgraph (the
research harness, ``python -m benchmarks``): 0 success; 2 bad input — a usage error or a
:class:`~taskgraph.errors.TaskgraphError`, one paragraph on stderr, never a traceback; 130 interrupted; 1 a bug,
with its traceback.

    parser = ExitParser(prog="mytool")
    return run_command(lambda: int(parser.parse_args(argv).run(...)), bug="mytool hit an internal error (exit 1)")
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from taskgraph.errors import TaskgraphError


class UsageError(Exception):
    """A command line that argparse refused (exit 2)."""


class ExitParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors raise :class:`UsageError` (exit 2 with one message), after the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def run_command(command: Callable[[], int], *, bug: str) -> int:
    """``command()``'s exit code, or the contract's for what it raised: 2 (usage error, TaskgraphError), 130
    (Ctrl-C), 1 (anything else: its traceback, then ``bug``)."""
    try:
        return command()
    except UsageError as exc:
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
        print(bug, file=sys.stderr)
        return 1
