"""Running a sweep: one training run + one evaluation per cell, finished cells skipped, partial ones resumed.

    result = run_sweep("configs/planted.yaml", {"router.temperature": ["0.5", "1", "2"]}, "sweeps/tau", seeds=3)

The output folder::

    OUT/cells/<slug>/cell.json   the cell's settings and the sha256 of its spec (written first)
    OUT/cells/<slug>/run/        the training run (taskgraph train --out)
    OUT/cells/<slug>/eval.json   evaluate_run(run, split) (written last: a cell with it is finished)
    OUT/sweep.md, OUT/sweep.json, OUT/plots/<metric>-vs-<param>.png     (taskgraph.sweep.report / plots)

A cell is in one of these states, decided from its files alone (no timing, no lock; the run's own states are
:mod:`taskgraph.sweep.resumable`'s, shared with the benches' cells):

- ``eval.json`` of the asked split → **skipped** (nothing loads, nothing trains);
- ``eval.json`` of another split, or a finished run (``run/train.json`` completed, ``run/model``) → **evaluated** only;
- a run with a checkpoint → **resumed** (``train(resume=True)``: bit-exact on CPU);
- nothing, or a run that died before its first checkpoint → **trained** from scratch.

Before anything runs, every existing cell's recorded spec is compared with the spec the grid gives
it now: a cell trained with another spec (the spec file or ``--max-steps`` changed since) is an error
naming the differing fields, and nothing is touched.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from taskgraph.atomic import write_text
from taskgraph.errors import TaskgraphError, opt
from taskgraph.eval import EVAL_SPLITS, evaluate_run
from taskgraph.run_folder import check_output_folder, claim_container
from taskgraph.run_records import parse_json
from taskgraph.spec.diff import changed_fields
from taskgraph.sweep.grid import Cell, Grid, build_grid
from taskgraph.sweep.report import Row, aggregate, markdown_table, write_report
from taskgraph.sweep.resumable import FINISHED, RESUME, continue_run, read_record, run_state
from taskgraph.train import spec_hash

CELLS, CELL_RECORD, EVAL, RUN = "cells", "cell.json", "eval.json", "run"
MAX_LISTED = 5  # mismatching cells named in an error; the rest are counted
Status = Literal["skipped", "evaluated", "resumed", "trained"]


class SweepError(TaskgraphError):
    """A sweep cannot go on: a cell folder holds a run of another spec, or something that is not a cell."""


@dataclass(frozen=True)
class CellOutcome:
    """What :func:`run_sweep` did with one cell.

    Args:
        cell: the cell.
        folder: ``OUT/cells/<slug>``.
        status: ``skipped`` | ``evaluated`` | ``resumed`` | ``trained``.
        evaluation: the cell's ``eval.json``.
        seconds: wall time spent on the cell now (0 for a skipped one).
        resumed_from: the checkpoint step a resumed cell went on from.
    """

    cell: Cell
    folder: Path
    status: Status
    evaluation: dict[str, Any] = field(repr=False)
    seconds: float
    resumed_from: int | None = None

    def describe(self) -> str:
        """``ran (3.1 s)``, ``resumed from step 2 (1.2 s)``, ``skipped (finished)``, ..."""
        if self.status == "skipped":
            return "skipped (finished)"
        what = {
            "evaluated": "evaluated (trained before)",
            "trained": "trained",
            "resumed": f"resumed from step {self.resumed_from}",
        }[self.status]
        return f"{what} ({self.seconds:.1f} s)"


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: every cell's outcome, the aggregated rows, and the files written."""

    out_dir: Path
    grid: Grid
    split: str
    outcomes: tuple[CellOutcome, ...]
    rows: tuple[Row, ...]
    table: str
    markdown: Path
    json: Path
    plots: tuple[Path, ...]

    @property
    def cells(self) -> tuple[CellOutcome, ...]:
        return self.outcomes

    def counts(self) -> dict[str, int]:
        """How many cells were skipped / evaluated / resumed / trained."""
        out = {status: 0 for status in ("skipped", "evaluated", "resumed", "trained")}
        for outcome in self.outcomes:
            out[outcome.status] += 1
        return out

    def __repr__(self) -> str:
        return f"SweepResult(out_dir={str(self.out_dir)!r}, cells={len(self.outcomes)}, counts={self.counts()})"


def run_sweep(
    spec_path: str | os.PathLike[str],
    params: Mapping[str, Sequence[str]],
    out_dir: str | os.PathLike[str],
    *,
    seeds: int = 1,
    base_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    split: str = "val",
    max_steps: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> SweepResult:
    """Train and evaluate every cell of the grid (skipping finished ones), then write the report.

    Args:
        spec_path: the YAML spec file.
        params: ``{key: [raw value, ...]}``, the ``--param`` options (see :mod:`taskgraph.sweep.grid`).
        out_dir: the sweep folder (new, or a previous sweep of the same grid to complete).
        seeds: seeds per grid point (``training.seed + i``).
        base_dir: where the spec's relative data paths resolve (default: the spec file's folder).
        device: ``"cpu"`` or ``"cuda"``, for training and evaluation.
        split: the split every cell is evaluated on: ``"val"`` or ``"test"``.
        max_steps: cap ``training.steps`` of every cell (quick sweeps).
        progress: called with one line per cell as it finishes (the CLI prints them).

    Raises:
        SpecError: a bad spec, param or value (naming the ``--param``). SweepError: a cell folder
        holds a run of another spec. TrainingError, DataError, CheckpointError: from a cell's run.
    """
    from taskgraph.sweep.plots import write_plots  # matplotlib loads only when a sweep reports

    if split not in EVAL_SPLITS:
        raise SweepError(f"{opt('split')} {split!r}: choose from {list(EVAL_SPLITS)}")
    grid = build_grid(spec_path, params, seeds=seeds, max_steps=max_steps)
    out = Path(out_dir)
    base = Path(base_dir) if base_dir is not None else grid.spec_path.parent
    check_output_folder(out, kind="sweep", sources=[grid.spec_path])
    check_cells(out, grid)
    with claim_container(out, kind="sweep", sources=[grid.spec_path], legacy=(CELLS,)):
        outcomes = []
        for i, cell in enumerate(grid.cells, start=1):
            outcome = run_cell(cell, out / CELLS / cell.slug, base_dir=base, device=device, split=split)
            outcomes.append(outcome)
            if progress is not None:
                progress(f"[{i}/{len(grid.cells)}] {cell.label()}: {outcome.describe()}")
        rows = aggregate(grid, [o.evaluation for o in outcomes])
        markdown, summary = write_report(out, grid, rows, outcomes, split=split)
        plots = write_plots(out, grid, rows, split=split)
    return SweepResult(
        out, grid, split, tuple(outcomes), tuple(rows), markdown_table(grid, rows), markdown, summary, tuple(plots)
    )


# ----------------------------------------------------------------------------- one cell
def cell_record(cell: Cell) -> dict[str, Any]:
    """What ``cell.json`` holds: the settings, the seed, the spec and its hash."""
    return {
        "slug": cell.slug,
        "params": cell.params,
        "raw": dict(zip(cell.params, cell.raw)),
        "seed": cell.seed,
        "spec_hash": spec_hash(cell.spec),
        "spec": cell.spec.model_dump(mode="json"),
    }


def check_cells(out: Path, grid: Grid) -> None:
    """Every existing cell folder of ``grid`` under ``out`` must record the spec the grid gives it now.

    Raises:
        SweepError: listing every cell that differs (and the differing fields), or that is not a cell.
    """
    problems = []
    for cell in grid.cells:
        folder = out / CELLS / cell.slug
        problem = _cell_problem(folder, cell)
        if problem:
            problems.append(problem)
    if problems:
        shown = problems[:MAX_LISTED] + (
            [f"... and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
        )
        raise SweepError(
            f"{len(problems)} cell folder(s) under {str(out / CELLS)!r} do not match this sweep; "
            "nothing was run:\n"
            + "\n".join(f"  {p}" for p in shown)
            + f"\nrun the sweep with the spec and {opt('max-steps')} those cells were trained with, "
            f"give a new {opt('out')}, or remove those cell folders"
        )


def _cell_problem(folder: Path, cell: Cell) -> str | None:
    record_path = folder / CELL_RECORD
    if not folder.exists():
        return None
    if not record_path.is_file():
        held = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
        return None if not held else f"{folder}: holds {sorted(held)[:4]} but no {CELL_RECORD}; it is not a sweep cell"
    try:
        record = parse_json(record_path.read_text(encoding="utf-8"))
        recorded_hash, recorded_spec = record["spec_hash"], record["spec"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{record_path}: unreadable ({type(exc).__name__}: {exc}); remove the cell folder to run it again"
    if recorded_hash == spec_hash(cell.spec):
        return None
    changed = changed_fields(recorded_spec, cell.spec.model_dump(mode="json"))
    return f"{folder}: trained with another spec; differing fields: {', '.join(changed[:6]) or '?'}"


def run_cell(cell: Cell, folder: Path, *, base_dir: Path, device: str, split: str) -> CellOutcome:
    """Bring one cell to finished (see the module docstring for the states); returns what was done.

    The caller checked the folder with :func:`check_cells` first.
    """
    evaluation = read_record(folder / EVAL)  # unreadable: evaluate again
    if evaluation is not None and evaluation.get("split") == split:
        return CellOutcome(cell, folder, "skipped", evaluation, 0.0)
    start = time.perf_counter()
    run = folder / RUN
    state = run_state(run)
    status: Status = "evaluated" if state == FINISHED else ("resumed" if state == RESUME else "trained")
    resumed_from = None
    if state != FINISHED:
        if not (folder / CELL_RECORD).is_file():
            write_text(folder / CELL_RECORD, json.dumps(cell_record(cell), indent=1) + "\n")
        resumed_from = continue_run(cell.spec, run, state, base_dir=base_dir, device=device).resumed_from
    evaluation = evaluate_run(
        run, split=split, device=device, base_dir=base_dir, timing=False, alignment=False
    )  # a sweep reports quality, not speed
    write_text(folder / EVAL, json.dumps(evaluation, indent=1) + "\n")
    return CellOutcome(cell, folder, status, evaluation, time.perf_counter() - start, resumed_from)
