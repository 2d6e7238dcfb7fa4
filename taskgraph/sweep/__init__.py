"""Sensitivity sweeps: train a grid of spec variants × seeds, evaluate each, tabulate and plot mean ± std.

::

    from taskgraph.sweep import run_sweep
    result = run_sweep("configs/planted.yaml", {"router.temperature": ["0.5", "1", "2"],
                                                "training.label_noise": ["0", "0.2"]}, "sweeps/tau", seeds=3)
    print(result.table)        # also OUT/sweep.md, OUT/sweep.json, OUT/plots/<metric>-vs-<param>.png

``taskgraph sweep SPEC --param KEY=v1,v2 [--param ...] [--seeds N] --out DIR`` is the same from the
command line. Finished cells are skipped on a re-run and interrupted ones resumed
(:mod:`taskgraph.sweep.run`); keys and values are read as ``taskgraph train --set`` reads them, with
``*`` for every item of a list (:mod:`taskgraph.sweep.grid`).

A grid of one's own reuses the sweep's resumable cell (:mod:`taskgraph.sweep.resumable`): :func:`run_state` says from
a run folder's files alone whether it is ``FINISHED`` (evaluate it), can ``RESUME`` from a checkpoint, or is
``FRESH``; :func:`continue_run` trains it from there; :func:`read_record` reads a cell's own *done* record back.
"""

from taskgraph.sweep.grid import Cell, Grid, Param, build_grid, cell_slug, expand_key, parse_param, split_values
from taskgraph.sweep.report import METRICS, Row, Stat, aggregate, markdown_table, metric_values, stat
from taskgraph.sweep.resumable import (
    FINISHED,
    FRESH,
    RESUME,
    TRAIN_SUMMARY,
    RunState,
    continue_run,
    read_record,
    run_state,
)
from taskgraph.sweep.run import CellOutcome, SweepError, SweepResult, run_cell, run_sweep

__all__ = [  # the stage's public API; the other names imported above are internal
    "FINISHED",
    "FRESH",
    "METRICS",
    "RESUME",
    "TRAIN_SUMMARY",
    "RunState",
    "Grid",
    "SweepError",
    "SweepResult",
    "build_grid",
    "continue_run",
    "parse_param",
    "read_record",
    "run_state",
    "run_sweep",
]
