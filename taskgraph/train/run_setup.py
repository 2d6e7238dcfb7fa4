"""Before a run's first step: the device, deterministic kernels and seeds, and the run folder's checks.

A fresh run needs an absent or empty folder (or ``overwrite`` of a taskgraph train run); a resumed one needs a
complete checkpoint, the same training data and no entry of the wrong kind where it will write
(:func:`check_fresh`, :func:`checkpoint_to_resume`). Every check here raises before anything is written.
The names of the run folder's entries live here too (the layout: :mod:`taskgraph.train.loop`).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskgraph.atomic import write_text
from taskgraph.errors import CheckpointError, SpecError, TaskgraphError, opt
from taskgraph.files import describe
from taskgraph.run_folder import MARKER, clear_run, holds_entries, read_marker, run_lock, write_marker
from taskgraph.run_records import read_log
from taskgraph.spec import Spec, dump_spec, load_spec
from taskgraph.train.run_checkpoint import (
    CHECKPOINTS,
    RunCheckpoint,
    list_checkpoints,
    read_checkpoint,
    remove_partial,
    spec_hash,
)

LOG, SPEC, SUMMARY, BEST, FINAL = "log.jsonl", "spec.yaml", "train.json", "best", "model"


class TrainingError(TaskgraphError):
    """A run cannot start or go on: the output folder holds another run, no CUDA, a non-finite loss, ..."""


# ----------------------------------------------------------------------------- environment
def resolve_device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"unknown device {name!r}; choose 'cpu' or 'cuda'") from None
    if dev.type not in ("cpu", "cuda"):
        raise TrainingError(f"device {name!r}: taskgraph trains on 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            f"{opt('device')} {name}: no CUDA device is available to torch {torch.__version__}; use {opt('device-cpu')}"
        )
    return dev


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


@contextlib.contextmanager
def deterministic(cuda: bool) -> Iterator[None]:
    """Deterministic kernels while training (warn-only on CUDA, where some kernels have none)."""
    if cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=cuda)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


# ----------------------------------------------------------------------------- the run folder
def check_fresh(run: Path, spec: Spec, overwrite: bool) -> None:
    """A new run needs an absent or empty folder, one that never reached its first step, or (``overwrite``)
    a folder taskgraph marked as a train run; otherwise say what is there and how to go on."""
    if run.exists() and not run.is_dir():
        raise TrainingError(f"{opt('out')} {str(run)!r} is a file; give a folder for the run")
    if not run.exists():
        return None
    held = holds_entries(run)
    marker = read_marker(run)
    if not held or (overwrite and marker is not None) or _never_started(run, held, marker):
        return None
    if overwrite:
        raise TrainingError(
            f"{opt('overwrite')}: {str(run)!r} holds {', '.join(held[:6])} but is not a folder taskgraph "
            f"marked as a run (no {MARKER}); {opt('overwrite')} replaces only taskgraph's own runs, so "
            f"nothing was removed — give a new {opt('out')}, or remove the folder yourself"
        )
    if marker is None:
        raise TrainingError(
            f"{opt('out')} {str(run)!r} is not empty ({', '.join(held[:6])}) and is not a taskgraph run; "
            "give a new or empty folder for the run (nothing was changed)"
        )
    same = ""
    if (run / SPEC).is_file():
        try:
            same = " (same spec)" if spec_hash(load_spec(run / SPEC)) == spec_hash(spec) else " (a different spec)"
        except (SpecError, OSError):
            same = ""
    if not list_checkpoints(run) and not (run / FINAL).is_dir():
        raise TrainingError(
            f"{opt('out')} {str(run)!r} holds a run{same} that stopped before its first checkpoint, so "
            f"there is nothing to resume; pass {opt('overwrite')} to start it again, or give a new {opt('out')} "
            "(nothing was changed)"
        )
    raise TrainingError(
        f"{opt('out')} {str(run)!r} already holds a run{same}: {', '.join(held[:6])}; pass {opt('resume')} to "
        f"continue it with the same spec, {opt('overwrite')} to replace it, or give a new {opt('out')} "
        "(nothing was changed)"
    )


def _never_started(run: Path, held: list[str], marker: dict[str, Any] | None) -> bool:
    """A folder a train created but that never reached step 1 (only its spec and an empty log): not a run."""
    if not set(held) <= {SPEC, LOG} or (marker is not None and marker["kind"] != "train"):
        return False
    log = run / LOG
    return not log.exists() or (log.is_file() and log.stat().st_size == 0)


def checkpoint_to_resume(run: Path, spec: Spec) -> RunCheckpoint:
    if not run.is_dir():
        raise CheckpointError(
            f"{opt('resume')}: {str(run)!r} does not exist; there is no run to continue "
            f"(drop {opt('resume')} to start one)"
        )
    found = list_checkpoints(run)
    if not found:
        raise CheckpointError(
            f"{opt('resume')}: {str(run / CHECKPOINTS)!r} holds no complete checkpoint (a run writes "
            f"one every training.checkpoint_every = {spec.training.checkpoint_every} steps); "
            f"start again without {opt('resume')} into a new {opt('out')}"
        )
    checkpoint = read_checkpoint(found[-1], spec)
    _check_run_entries(run)
    if os.path.lexists(run / LOG):  # the lines resume keeps are read by the plots: check them before any write
        read_log(run / LOG, upto=checkpoint.state.log_bytes)
    return checkpoint


def _check_run_entries(run: Path) -> None:
    """CheckpointError when an entry a resumed run writes is there but of the wrong kind (a folder where
    train.json goes, a file where plots/ goes): found now, not after the training it would cost."""
    for name, folder in (
        (LOG, False),
        (SUMMARY, False),
        (SPEC, False),
        (BEST, True),
        (FINAL, True),
        ("plots", True),
        ("tensorboard", True),
    ):
        problem = describe(run / name)
        wrong = problem != "is a directory, not a file" if folder else problem is not None
        if wrong and problem != "does not exist":
            what = "a folder" if folder else "a regular file"
            raise CheckpointError(
                f"{str(run / name)!r} {problem or 'is a regular file'}; a resumed run writes "
                f"{what} there: move it away to resume the run"
            )


def check_same_data(saved: dict[str, str], now: dict[str, str], folder: Path) -> None:
    changed = sorted(name for name in now if saved.get(name) != now[name])
    if changed or set(saved) != set(now):
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: the training data of task(s) {changed or sorted(saved)} "
            "changed since it was written; resume needs the same data (or start a new run)"
        )


def cut_log(path: Path, size: int) -> None:
    """Drop log lines written after the checkpoint (they will be written again)."""
    problem = describe(path)
    if problem == "does not exist":
        path.write_bytes(b"")
    elif problem is not None:
        raise CheckpointError(f"the run's log {str(path)!r} {problem}; move it away to resume the run")
    elif path.stat().st_size > size:
        with open(path, "r+b") as handle:
            handle.truncate(size)


# ----------------------------------------------------------------------------- the folder, opened to write
def open_run_folder(
    run: Path,
    held: contextlib.ExitStack,
    spec: Spec,
    base_dir: str | os.PathLike[str],
    overwrite: bool,
    *,
    fresh: bool,
    log: int,
) -> list[str]:
    """Rank 0's run folder, locked and ready to write: a fresh run's marker, spec and empty log (returns what taskgraph
    did not write there and kept, e.g. RUN/graph.html); a resumed run's partial files removed and its log cut back
    to the checkpoint's ``log`` bytes."""
    if fresh:
        run.mkdir(parents=True, exist_ok=True)
        held.enter_context(run_lock(run, what="run folder"))
        check_fresh(run, spec, overwrite)  # again, under the lock: another process may have started
        kept = clear_run(run)
        write_marker(run, "train", spec.name, spec_hash=spec_hash(spec), spec_dir=str(Path(base_dir).resolve()))
        write_text(run / SPEC, dump_spec(spec))  # the effective spec (with --set): a resume reads it
        (run / LOG).write_bytes(b"")
        return kept
    if read_marker(run) is None:  # a run from before markers
        write_marker(run, "train", spec.name, spec_hash=spec_hash(spec), spec_dir=str(Path(base_dir).resolve()))
    remove_partial(run)
    cut_log(run / LOG, log)
    return []
