"""``--threads N`` for the commands that run torch on the CPU, and the default when it is not given.

torch uses one thread per physical core by default. On a machine that is busy with something else those
threads wait on each other and a run slows down many times over (measured on 2 cores beside another job:
a 300-step run took 14.9 s on 2 threads, 3.1 s on 1). The default here is the number of cores minus the
machine's current load (the 1-minute load average, rounded), at least 1 and at most torch's own default:
all cores on an idle machine, fewer on a busy one. ``--threads N`` sets it exactly.
"""

from __future__ import annotations

import argparse
import os

from taskgraph.cli.argtypes import positive_int


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="CPU threads for torch (default: the cores the machine's load leaves free; see taskgraph.cli.threads)",
    )


def default_threads(cores: int, load: float | None, torch_default: int) -> int:
    """The threads to use: ``cores`` minus the rounded ``load``, within ``[1, torch_default]``."""
    free = cores if load is None else cores - int(round(load))
    return max(1, min(torch_default, free))


def apply_threads(args: argparse.Namespace) -> int:
    """Set torch's intra-op threads from ``args.threads`` or :func:`default_threads`; returns the number."""
    import torch

    if args.threads is not None:
        threads = args.threads
    else:
        try:
            load: float | None = os.getloadavg()[0]
        except (OSError, AttributeError):
            load = None
        threads = default_threads(os.cpu_count() or 1, load, torch.get_num_threads())
    torch.set_num_threads(threads)
    return threads
