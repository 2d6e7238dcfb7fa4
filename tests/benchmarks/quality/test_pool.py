"""``bench quality --jobs N``: cells in worker processes, results in the caller's order, errors as raised.

(The bench end to end with ``--jobs 2`` against the same bench run one cell at a time is in test_cli.py.)
"""

from __future__ import annotations

import os
import time

import pytest

from benchmarks.quality.pool import CellPool, say_on_stderr, worker_threads
from benchmarks.quality.suites import QualityError


def where(index: int, pause: float, say) -> tuple[int, int, int, bool]:
    """A cell that reports which process ran it, on how many threads, and whether it got the stderr ``say``."""
    import torch

    time.sleep(pause)  # later cells finish first: the order of results must still be the order of the calls
    return index, os.getpid(), torch.get_num_threads(), say is say_on_stderr


def refuse(index: int, say) -> int:
    if index == 1:
        raise QualityError(f"cell {index}: holds a cell trained with another spec")
    return index


def test_worker_threads_split_the_threads_among_the_jobs():
    assert worker_threads(2, 2) == 1 and worker_threads(8, 2) == 4 and worker_threads(1, 4) == 1
    assert worker_threads(4, 1) == 4


def test_one_job_runs_every_cell_here_in_order_with_the_callers_say():
    lines: list[str] = []
    with CellPool(1, 1, lines.append) as pool:
        results = pool.run(where, [(i, 0.0) for i in range(3)])
    assert [r[0] for r in results] == [0, 1, 2]
    assert {r[1] for r in results} == {os.getpid()}
    assert not any(r[3] for r in results)  # the caller's own say, not the workers' stderr


def test_two_jobs_run_cells_in_two_other_processes_and_keep_the_order():
    with CellPool(2, 4, lambda _: None) as pool:
        first = pool.run(where, [(i, 0.3 if i % 2 == 0 else 0.0) for i in range(6)])
        second = pool.run(where, [(i, 0.0) for i in range(4)])  # a second part: the same workers serve it
    assert [r[0] for r in first] == list(range(6)) and [r[0] for r in second] == list(range(4))
    pids = {r[1] for r in first}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {r[1] for r in second} <= pids  # started once per suite, not once per part
    assert {r[2] for r in first} == {2}  # 4 threads shared by 2 jobs
    assert all(r[3] for r in first)


def test_a_cell_that_raises_reaches_the_caller_as_raised():
    with pytest.raises(QualityError, match="cell 1: holds a cell trained with another spec"):
        with CellPool(2, 2, lambda _: None) as pool:
            pool.run(refuse, [(i,) for i in range(4)])
