"""Torch's CPU threads for one piece of work: the load-based default, and a scope that gives the caller's back.

torch uses one thread per physical core by default. On a machine that is busy with something else those
threads wait on each other and a run slows down many times over. The default here is the number of cores minus the
machine's current load (the 1-minute load average, rounded), at least 1 and at most torch's own default:
all cores on an idle machine, fewer on a busy one. A number given sets it exactly.

The CLI's ``--threads N`` and the API's ``threads=`` both come here::

    with torch_threads(None) as n:      # the default for this machine now; torch's setting restored after
        ...
    train(spec, "runs/x", threads=2)    # the same, inside taskgraph.train.train

torch is imported only when a count is set, so reading this module costs nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from taskgraph.errors import TaskgraphError

__all__ = [  # the module's public API
    "MAX_THREADS",
    "ThreadsError",
    "default_threads",
    "set_threads",
    "torch_threads",
]

MAX_THREADS = 1024  # more than any machine torch runs on has cores


class ThreadsError(TaskgraphError):
    """A thread count that is not a whole number in ``1 .. MAX_THREADS``."""


def default_threads(cores: int, load: float | None, torch_default: int) -> int:
    """The threads to use on a machine of ``cores`` cores whose 1-minute load average is ``load`` (None: unknown,
    all cores) when torch would use ``torch_default``: ``cores`` minus the rounded ``load``, within
    ``[1, torch_default]`` (``default_threads(8, 2.4, 8) == 6``)."""
    free = cores if load is None else cores - int(round(load))
    return max(1, min(torch_default, free))


def machine_load() -> float | None:
    """The 1-minute load average, or None where the platform has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def check_threads(threads: int | None) -> int | None:
    """``threads`` if it is None or a whole number in ``1 .. MAX_THREADS``; :class:`ThreadsError` otherwise."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ThreadsError(
            f"threads must be a whole number from 1 to {MAX_THREADS} (torch's CPU threads), or None for the cores "
            f"the machine's load leaves free; got {threads!r}"
        )
    return threads


def resolve_threads(threads: int | None) -> int:
    """The count to use: ``threads`` when given, else :func:`default_threads` for this machine now."""
    import torch

    given = check_threads(threads)
    if given is not None:
        return given
    return default_threads(os.cpu_count() or 1, machine_load(), torch.get_num_threads())


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to :func:`resolve_threads` ``(threads)``; returns the number set."""
    import torch

    count = resolve_threads(threads)
    torch.set_num_threads(count)
    return count


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the body with torch's threads set by :func:`set_threads`; the caller's count is restored after,
    on an error too. Yields the number set."""
    import torch

    check_threads(threads)  # a bad count fails before anything changes
    before = torch.get_num_threads()
    try:
        yield set_threads(threads)
    finally:
        torch.set_num_threads(before)
