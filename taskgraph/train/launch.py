"""Data-parallel training from one command, and the checks every process makes before it joins the others.

    taskgraph train SPEC --out RUN --nproc-per-node 4        # one machine; torchrun's own launcher underneath
    torchrun --nproc_per_node 4 -m taskgraph train SPEC --out RUN                       # the same workers

torchrun ends with exit status 1 and a traceback of its own launcher (``ChildFailedError``) whenever a worker
fails — a refusal (exit 2) included — and with the same on Ctrl-C (``SignalException``); nothing a worker does
changes that. What a worker can do is supply the message torchrun's failure table shows: :func:`record_failure`
writes taskgraph's paragraph to ``TORCHELASTIC_ERROR_FILE``, where torchrun would otherwise print "To enable
traceback see ...".

:func:`launch` starts the same workers through torchrun's launcher (``elastic_launch``: one machine, a c10d
rendezvous on a free local port, no restarts). Rank 0 writes to the terminal; the other ranks write to a log folder
that is removed when the job ends well. The launcher's own log lines go there too, and how the workers ended
becomes one exit status (:func:`verdict`): 2 when every process that failed of its own accord refused (each
distinct paragraph printed once), 130 on Ctrl-C, 1 when a process died or hit a bug (named, with its log).

:func:`check_before_joining` runs, before any process group starts, every check that needs no peer: the device,
the batch against the number of processes, the collective timeout and, on rank 0, the run folder (what ``--out``
holds, its lock, the checkpoint to resume). The launcher runs it once before it starts anything; under plain
torchrun each process runs it, and a refusal that every process of a machine reaches alike is printed by that
machine's local rank 0 alone (the others exit 2 quietly).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from taskgraph.errors import opt
from taskgraph.run_folder import check_output_folder, read_marker, run_lock
from taskgraph.spec import Spec

ERROR_FILE = "TORCHELASTIC_ERROR_FILE"  # torchrun's agent names a file per worker for its failure message
_LAUNCHER_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")  # the agent's handlers; given back afterwards


def check_before_joining(
    spec: Spec,
    run: Path,
    *,
    base_dir: str | os.PathLike[str],
    world: int,
    rank: int,
    resume: bool,
    overwrite: bool,
    device: str,
    local_processes: int | None = None,
) -> None:
    """The checks of :func:`~taskgraph.train.train` that need no other process, made before any joins a group.

    Every process of a machine reaches the same verdict on the first three; the run folder is rank 0's alone (it
    writes it), as in :func:`~taskgraph.train.train`, which repeats these checks under the run's lock.
    ``local_processes`` (the launcher's count) is checked against the machine's CUDA devices with ``device="cuda"``.

    Raises:
        TrainingError, CheckpointError, OutputPathError, RunLockedError, DistributedError: as train would.
    """
    from taskgraph.train.distributed import collective_timeout
    from taskgraph.train.run_setup import TrainingError, check_fresh, checkpoint_to_resume, resolve_device

    if resume and overwrite:
        raise TrainingError(
            f"{opt('resume')} and {opt('overwrite')} contradict each other: {opt('resume')} continues the run, "
            f"{opt('overwrite')} starts it afresh; give one"
        )
    if resolve_device(device).type == "cuda" and local_processes is not None:
        import torch

        if local_processes > torch.cuda.device_count():
            raise TrainingError(
                f"{local_processes} processes with --device cuda need one CUDA device each, and this machine has "
                f"{torch.cuda.device_count()}; start at most that many"
            )
    if spec.training.batch_size < world:
        raise TrainingError(
            f"training.batch_size = {spec.training.batch_size} is the whole step's batch, split across {world} "
            "processes: give at least one example per process (a larger batch, or fewer processes)"
        )
    if world > 1:
        collective_timeout()
    if rank != 0:
        return
    check_output_folder(run, kind="train", sources=[base_dir])
    if run.is_dir() and (resume or read_marker(run) is not None):  # never a lock file in a stranger's folder
        with run_lock(run, what="run folder"):  # another job holds it: refused here, not after the group starts
            pass
    if resume:
        checkpoint_to_resume(run, spec)
    else:
        check_fresh(run, spec, overwrite)


def record_failure(message: str, *, code: int) -> None:
    """Leave ``message`` where torchrun's agent looks for a failed worker's explanation, if it started this one.

    torchrun's failure table then shows it in place of "To enable traceback see ..."; :func:`launch` reads it back,
    with ``code`` and whether this process only stopped because another did.
    """
    path = os.environ.get(ERROR_FILE, "").strip()
    if not path:
        return
    from taskgraph.train.distributed import stopped_by_peer

    record = {  # the layout of torch's own ErrorHandler.record_exception, which the agent reads back
        "message": {"message": message, "extraInfo": {"timestamp": str(int(time.time()))}},
        "taskgraph": {"exit": code, "follows": stopped_by_peer()},
    }
    with contextlib.suppress(OSError):
        Path(path).write_text(json.dumps(record), encoding="utf-8")


@dataclass(frozen=True)
class Ended:
    """How one failed worker ended, as the launcher saw it.

    Args:
        rank: the worker's rank.
        exitcode: its exit status; negative: the signal that ended it.
        message: what it recorded (:func:`record_failure`), or None.
        follows: it stopped because another process did (lost its peers, or the launcher's SIGTERM).
        log: the file holding its output (None for rank 0, whose output is the terminal's).
    """

    rank: int
    exitcode: int
    message: str | None = None
    follows: bool = False
    log: Path | None = None


@dataclass(frozen=True)
class Verdict:
    """The launcher's exit status, the lines it adds to what rank 0 printed, and whether to keep the logs."""

    code: int
    lines: tuple[str, ...] = ()
    keep_logs: bool = False


def verdict(ended: Sequence[Ended], world: int) -> Verdict:
    """One exit status for a job whose workers ``ended`` (the failed ones), and what to add to rank 0's output.

    The causes are the failures that did not just follow another (a lost peer, the launcher's SIGTERM); if every
    failure followed one, all count. Exit 130 when a cause was an interrupt, 2 when every cause was a refusal, else
    1. Rank 0 printed its own message; another rank's refusal is added once per distinct text, a death or a bug
    with the log that holds its output.
    """
    if not ended:
        return Verdict(0)
    causes = [e for e in ended if not e.follows and e.exitcode != -signal.SIGTERM] or list(ended)
    codes = {e.exitcode for e in causes}
    code = 130 if codes & {130, -signal.SIGINT} else 2 if codes == {2} else 1
    shown = {e.message for e in ended if e.rank == 0 and e.message}  # rank 0 printed it on the terminal
    lines: list[str] = []
    keep = False
    for e in sorted(causes, key=lambda e: e.rank):
        where = f"; its output is in {e.log}" if e.log is not None else ""
        if e.exitcode in (2, 130) and e.message:
            if e.message not in shown:
                lines.append(e.message)
                shown.add(e.message)
        elif e.exitcode in (2, 130):
            continue
        elif e.rank == 0 and e.exitcode == 1:
            continue  # rank 0's traceback is on the terminal already
        elif e.message:  # a bug it recorded: its traceback is in its output
            lines.append(
                f"error: rank {e.rank} of {world} hit an internal error (exit {e.exitcode}): {e.message}{where}"
            )
            keep = keep or e.log is not None
        else:
            lines.append(
                f"error: rank {e.rank} of {world} ended with {_how(e.exitcode)} and no message of its own (killed "
                f"from outside, out of memory, or a crash); the other processes stopped with it{where}"
            )
            keep = keep or e.log is not None
    return Verdict(code, tuple(lines), keep)


def _how(exitcode: int) -> str:
    if exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        return f"{signal.Signals(-exitcode).name} (exit {exitcode})"
    except ValueError:
        return f"signal {-exitcode}"


def launch(
    argv: Sequence[str],
    *,
    nproc: int,
    run: Path,
    threads: int | None,
) -> int:
    """Start ``nproc`` processes of ``python -m taskgraph ARGV`` on this machine, as torchrun would; their verdict.

    Args:
        argv: the worker's command line after ``taskgraph`` (``train ... --out RUN``).
        nproc: the number of processes (one per GPU with ``--device cuda``).
        run: the run folder (named in the message when rank 0 could not say where the last checkpoint is).
        threads: the CPU threads each process uses; None: the cores the machine's load leaves free, shared out
            (``OMP_NUM_THREADS``, unless it is set).

    Returns:
        The exit status: 0, 2 (a refusal), 130 (interrupted: 128 + the signal), or 1 (a process died or hit a bug).
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException, Std
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from taskgraph.threads import resolve_threads

    logs = Path(tempfile.mkdtemp(prefix="taskgraph-launch-"))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # a free port
        max_restarts=0,
        logs_specs=DefaultLogsSpecs(log_dir=str(logs), redirects={r: Std.ALL for r in range(1, nproc)}),
    )
    omp = None if threads is not None or "OMP_NUM_THREADS" in os.environ else max(1, resolve_threads(None) // nproc)
    print(
        f"taskgraph: {nproc} processes on this machine; rank 0 writes here, the others to {logs} (removed when the "
        "job ends well)",
        file=sys.stderr,
        flush=True,
    )
    result = Verdict(0)
    try:
        with _launcher_state(logs / "launcher.log", omp):
            elastic_launch(config, entrypoint=sys.executable)("-m", "taskgraph", *argv)
    except ChildFailedError as failed:
        ended = [_ended(rank, f, logs) for rank, f in sorted(failed.failures.items())]
        result = verdict(ended, nproc)
        if not any(e.rank == 0 and e.message for e in ended):  # rank 0 died before it could name the checkpoint
            result = Verdict(result.code, (*result.lines, _last_checkpoint(run)), result.keep_logs)
    except SignalException as stopped:  # Ctrl-C: the agent passed the signal on; rank 0 says where to resume
        result = Verdict(128 + int(stopped.sigval))
    finally:
        for line in result.lines:
            print(line, file=sys.stderr)
        if not result.keep_logs:
            shutil.rmtree(logs, ignore_errors=True)
    return result.code


def _ended(rank: int, failure: object, logs: Path) -> Ended:
    """An :class:`Ended` from torchrun's ``ProcessFailure`` and the record the worker left (if any)."""
    data = getattr(failure, "error_file_data", None)
    record = data if isinstance(data, dict) else {}
    ours = record.get("taskgraph") if isinstance(record.get("taskgraph"), dict) else None
    body = record.get("message") if ours is not None else None
    message = body.get("message") if isinstance(body, dict) else None
    local = int(getattr(failure, "local_rank", rank))
    found = sorted(logs.glob(f"*/attempt_*/{local}/stderr.log"))
    return Ended(
        rank=rank,
        exitcode=int(getattr(failure, "exitcode", 1)),
        message=message if isinstance(message, str) else None,
        follows=bool(ours and ours.get("follows")),
        log=found[-1] if found and local != 0 else None,
    )


def _last_checkpoint(run: Path) -> str:
    from taskgraph.train.run_checkpoint import list_checkpoints

    saved = list_checkpoints(run) if run.is_dir() else []
    if not saved:
        return f"{run}: no checkpoint was written yet"
    return f"{run}: the last checkpoint is {str(saved[-1])!r} (resume: the same command with --resume)"


@contextlib.contextmanager
def _launcher_state(log_file: Path, omp_threads: int | None) -> Iterator[None]:
    """While the launcher runs: its log lines go to ``log_file``, the workers get ``OMP_NUM_THREADS``; afterwards
    this process has its signal handlers, logging and environment back (the agent changes all three)."""
    launcher_log = logging.getLogger("torch.distributed")
    handlers, propagate = list(launcher_log.handlers), launcher_log.propagate
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    signals = {name: signal.getsignal(getattr(signal, name)) for name in _LAUNCHER_SIGNALS if hasattr(signal, name)}
    environ = {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "TORCHELASTIC_SIGNALS_TO_HANDLE")}
    launcher_log.handlers, launcher_log.propagate = [to_file], False
    if omp_threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(omp_threads)
    try:
        yield
    finally:
        launcher_log.handlers, launcher_log.propagate = handlers, propagate
        to_file.close()
        for name, handler in signals.items():
            if handler is not None:
                signal.signal(getattr(signal, name), handler)
        for key, value in environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
