"""Argument types shared by the subcommands (argparse turns their errors into a usage error, exit 2).

Every count has an upper bound, so a typo (``--seeds 1000000``, ``--layers 1000000000``) is refused
with the limit named instead of running until it is killed or allocating what the machine lacks:

==========================  ==================================================================
``seed``                    0 .. :data:`~taskgraph.spec.MAX_SEED` (2³² − 1), as ``training.seed``
``seeds`` (a count)         1 .. :data:`MAX_SEEDS` seeds per grid point / router
``layers``                  1 .. :data:`MAX_LAYERS` adapted layers drawn by ``export --layers``
``positive_int``, ``count`` 1 (or 0) .. :data:`MAX_COUNT`: steps, shots, batch sizes
``rounds``                  1 .. :data:`MAX_ROUNDS` timed rounds (``bench``, ``eval --timing-rounds``)
``task_count``              1 .. :data:`MAX_TASKS` tasks a benchmark builds (``bench speed``, ``bench scale``)
``bench_batch``, ``seq``    1 .. :data:`MAX_BENCH_BATCH` examples, 1 .. :data:`MAX_SEQ` tokens (``bench speed``)
``threads``                 1 .. :data:`MAX_THREADS` torch threads
==========================  ==================================================================
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from taskgraph.spec import MAX_SEED
from taskgraph.threads import MAX_THREADS

MAX_SEEDS = 100  # seeds per grid point: a sweep of 100 seeds already trains 100 runs per value
MAX_LAYERS = 1000  # no transformer has this many layers
MAX_COUNT = 10**9  # steps, shots, batch sizes: larger runs until killed or allocates without end
MAX_ROUNDS = 10_000
MAX_TASKS = 100_000  # ten times the largest supported task count (T = 10,000)
MAX_BENCH_BATCH, MAX_SEQ = 4096, 8192


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None


def int_in(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """An argument type for integers in ``[low, high]``; the message names the limit (and ``what`` it bounds)."""

    def parse(text: str) -> int:
        if len(text) > 40:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low:,} to {high:,}, got {len(text)} characters"
            )
        value = _integer(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:,}, got {value:,}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}{f' ({what})' if what else ''}, got {value:,}")
        return value

    parse.__name__ = f"int_in_{low}_{high}"
    return parse


positive_int = int_in(1, MAX_COUNT)
"""An integer in 1 .. 10⁹ (steps, rounds, batch sizes, threads, task counts)."""

count = int_in(0, MAX_COUNT)
"""An integer in 0 .. 10⁹ (warm-up rounds, phase-1 steps)."""

seed = int_in(0, MAX_SEED, "the seed range of training.seed")
"""A seed, 0 .. 2³² − 1, the range of ``training.seed``."""

seeds = int_in(1, MAX_SEEDS, "seeds per grid point; run more in separate --out folders")
"""A number of seeds, 1 .. :data:`MAX_SEEDS`."""

layers = int_in(1, MAX_LAYERS, "adapted layers to draw")
"""A number of layers to draw, 1 .. :data:`MAX_LAYERS`."""

rounds = int_in(1, MAX_ROUNDS, "timed rounds")
"""Timed rounds, 1 .. :data:`MAX_ROUNDS`."""

warmup_rounds = int_in(0, MAX_ROUNDS, "warm-up rounds")
"""Uncounted warm-up rounds, 0 .. :data:`MAX_ROUNDS`."""

task_count = int_in(1, MAX_TASKS, "tasks a benchmark builds")
"""Tasks a benchmark builds, 1 .. :data:`MAX_TASKS`."""

bench_batch = int_in(1, MAX_BENCH_BATCH, "examples per benchmark batch")
"""Examples per benchmark batch, 1 .. :data:`MAX_BENCH_BATCH`."""

seq = int_in(1, MAX_SEQ, "tokens per example")
"""Tokens per example, 1 .. :data:`MAX_SEQ`."""

threads = int_in(1, MAX_THREADS, "torch threads")
"""Torch threads, 1 .. :data:`MAX_THREADS`."""


def router_kind(text: str) -> str:
    """A router kind known to :data:`~taskgraph.registry.ROUTERS` (``poly``, ``graph``, ...)."""
    from taskgraph.registry import ROUTERS

    if text not in ROUTERS:
        raise argparse.ArgumentTypeError(f"unknown router {text[:40]!r}; choose from {ROUTERS.kinds()}")
    return text


def output_path(text: str) -> str:
    """A path to write (``--json OUT``); an empty or blank one is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    return text
