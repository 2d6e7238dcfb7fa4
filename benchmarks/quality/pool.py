"""Cells side by side: ``python -m benchmarks quality --jobs N`` runs N cells at a time, each in its own process.

The cells of a part (:mod:`benchmarks.quality.run`: lr selection, the other seeds, adaptation, the oracle
ceiling) do not depend on each other, and each writes only its own folder, atomically
(:mod:`benchmarks.quality.cells`), so N processes never touch one file. Small models train faster as N
one-thread processes than as one process on N threads (a step's matmuls are too small to split well), so on a
2-core machine ``--jobs 2`` roughly halves a suite's wall time.

* Each worker runs torch on ``threads // jobs`` threads (at least 1), set once when it starts.
* Workers are started with ``spawn`` (a fresh interpreter: no torch state, thread pool or CUDA context inherited
  from the parent) and report progress on stderr, line by line, in the order their cells get there.
* Results come back in the order the cells were given. A cell that raises (a folder of another spec: a
  :class:`~benchmarks.quality.suites.QualityError`) stops the part once its turn in that order comes: the cells
  not yet started then never start, the running ones finish and keep their folders (a re-run skips them), and the
  error reaches the caller as raised.
* ``jobs == 1`` runs every cell in this process, in order, with the caller's ``say`` — what the bench always did.
* The workers start once per suite (:class:`CellPool`) and serve every part of it.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

R = TypeVar("R")
Say = Callable[[str], None]


def say_on_stderr(text: str) -> None:
    """A worker's progress line (the parent's ``say`` cannot cross a process boundary)."""
    print(text, file=sys.stderr, flush=True)


def _start_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def worker_threads(threads: int, jobs: int) -> int:
    """Torch threads per worker when ``jobs`` cells share ``threads`` threads: ``threads // jobs``, at least 1."""
    return max(1, threads // max(1, jobs))


class CellPool:
    """Up to ``jobs`` cells at a time, in worker processes started once and kept for every part of a suite.

    ``with CellPool(jobs, threads, say) as pool: pool.run(fn, calls)``; with ``jobs == 1`` no process is started.
    """

    def __init__(self, jobs: int, threads: int, say: Say) -> None:
        self.jobs, self.threads, self.say = jobs, threads, say
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> CellPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> list[R]:
        """``[fn(*args, say) for args in calls]``, up to ``jobs`` at a time; results in the order of ``calls``.

        ``fn`` must be a module-level function and every ``args`` picklable (a worker imports ``fn`` by name). In a
        worker ``say`` is :func:`say_on_stderr`.
        """
        if self.jobs <= 1 or len(calls) <= 1:
            return [fn(*args, self.say) for args in calls]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(worker_threads(self.threads, self.jobs),),
            )
        futures = [self._pool.submit(fn, *args, say_on_stderr) for args in calls]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()  # queued cells never start; running ones finish (their folders stay whole)
            raise
