"""``--threads N`` for the commands that run torch on the CPU, and the default when it is not given.

The count and its load-based default are the library's (:mod:`taskgraph.threads`, the API's ``threads=``):
all cores on an idle machine, fewer on a busy one; ``--threads N`` sets it exactly. The CLI gives the caller's
thread count back when a command ends (``taskgraph.cli.main``).
"""

from __future__ import annotations

import argparse

from taskgraph.cli.argtypes import threads
from taskgraph.threads import default_threads, set_threads

__all__ = ["add_threads_option", "apply_threads", "default_threads"]


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=threads,
        default=None,
        metavar="N",
        help="CPU threads for torch (default: the cores the machine's load leaves free; see taskgraph.threads)",
    )


def apply_threads(args: argparse.Namespace) -> int:
    """Set torch's intra-op threads from ``args.threads`` or the load-based default; returns the number."""
    return set_threads(args.threads)
