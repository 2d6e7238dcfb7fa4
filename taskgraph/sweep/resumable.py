"""A resumable training cell: what its run folder holds decides what is left to do, from its files alone.

    state = run_state(run)                       # "finished" | "resume" | "fresh"
    if state != FINISHED:
        result = continue_run(spec, run, state, base_dir=base, device="cpu")
    ... evaluate run, then write the cell's record (read back with read_record: the cell is done)

One implementation for every grid of training runs: the sweep's cells (:mod:`taskgraph.sweep.run`) and the
benches' (:mod:`benchmarks.quality.cells`, and through it :mod:`benchmarks.merging`). Each caller keeps
its own folder layout and its own *done* record (a sweep cell's ``eval.json`` of the asked split, a bench
cell's ``eval.json``), written last; below that record the run folder is

- **finished** — ``train.json`` says the run completed and the final ``model/`` is there: only evaluate it;
- **resume** — a complete checkpoint: ``train(resume=True)`` goes on from the newest (bit-exact on CPU);
- **fresh** — nothing, or a start that died before its first checkpoint: removed, and trained from scratch.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

from taskgraph.files import describe
from taskgraph.run_records import parse_json
from taskgraph.spec import Spec
from taskgraph.train import TrainResult, list_checkpoints, train

FINISHED = "finished"
"""A run's state: it holds a finished run (``train.json`` says completed); evaluated, never trained again."""
RESUME = "resume"
"""A run's state: it holds a checkpoint to go on from."""
FRESH = "fresh"
"""A run's state: nothing to go on from; trained from step 0."""
RunState = Literal["finished", "resume", "fresh"]
TRAIN_SUMMARY = "train.json"
"""The run's summary record, written by the training loop at the end of a run (:func:`read_record` reads it)."""
FINAL_MODEL = "model"  # the final model's folder in a run


def read_record(path: Path) -> dict[str, Any] | None:
    """The JSON object in the regular file ``path``; None when it is absent, torn or not an object (the cell
    is then not done, and its record is written again)."""
    try:
        data = parse_json(path.read_text(encoding="utf-8")) if describe(path) is None else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def run_state(run: Path) -> RunState:
    """Where the training run in ``run`` stands: ``finished``, ``resume`` (a checkpoint) or ``fresh``."""
    summary = read_record(run / TRAIN_SUMMARY)
    if summary is not None and summary.get("completed") and (run / FINAL_MODEL).is_dir():
        return FINISHED
    if run.is_dir() and list_checkpoints(run):
        return RESUME
    return FRESH


def continue_run(
    spec: Spec, run: Path, state: RunState, *, base_dir: str | os.PathLike[str], device: str
) -> TrainResult:
    """Train ``run`` to its last step from where ``state`` (:func:`run_state`) says it stands.

    Raises:
        ValueError: ``state`` is ``finished`` (nothing is left to train; the caller evaluates instead).
        TrainingError, DataError, CheckpointError: from the run.
    """
    if state not in (RESUME, FRESH):
        raise ValueError(
            f"continue_run: state {state!r}: choose {RESUME!r} or {FRESH!r}; a finished run is evaluated, not trained"
        )
    if state == FRESH and run.exists():
        shutil.rmtree(run)  # a start that wrote no checkpoint: nothing to resume
    return train(spec, run, base_dir=base_dir, resume=state == RESUME, device=device)
