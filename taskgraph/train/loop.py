"""The multi-task training loop: one function, read top to bottom, no callbacks.

    result = train(spec, "runs/example", base_dir="configs")           # or: taskgraph train SPEC --out RUN

Each step draws a mixed-task batch, computes ``loss = task loss + router.regularizer()``, stops on a
non-finite loss, back-propagates, clips the gradient norm, and takes an AdamW step at the learning
rate of the warm-up + cosine schedule. Every ``eval_every`` steps the model is validated (the best
one is kept in ``RUN/best``); every ``checkpoint_every`` steps and at the end a checkpoint is
written. ``resume=True`` continues from the newest checkpoint and reproduces, bit for bit on CPU,
the weights an uninterrupted run reaches.

The run directory::

    RUN/spec.yaml        the resolved spec, written at start
    RUN/log.jsonl        {"step", "split": "train", "loss", "task_loss", "reg_loss", "lr_adapters",
                          "examples_per_s", "time"} per step and {"step", "split": "val", "acc": {task: acc},
                          "mean_acc", "loss"} per validation (append-only; cut back to the checkpoint on resume)
    RUN/checkpoints/step-000100/   model (save_pretrained) + optimizer.safetensors + trainer.json
    RUN/best/            save_pretrained of the best-validation model + trainer.json {step, mean_acc, acc}
    RUN/model/           save_pretrained of the final model
    RUN/train.json       summary: steps, wall time, final / best validation (the final one counts), examples/s
    RUN/tensorboard/     TensorBoard events, with training.report_to: [tensorboard] (taskgraph.train.tensorboard)
    RUN/plots/           loss, validation accuracy, relations, routing and gates (taskgraph.report), at the end
    RUN/.taskgraph-run.json, RUN/.taskgraph.lock   the run's marker (identity, the spec's folder) and its lock
                         (taskgraph.run_folder)

Progress goes to stderr: a bar on a terminal, a line every ``eval_every`` steps or 30 s elsewhere
(:mod:`taskgraph.train.progress`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskgraph.atomic import replace_directory, staging_dir, write_text
from taskgraph.errors import CheckpointError, SpecError, TaskgraphError, opt
from taskgraph.files import describe
from taskgraph.model import TaskGraphModel, TaskGraphOutput
from taskgraph.model.footprint import plan_model
from taskgraph.run_folder import (
    MARKER,
    check_output_folder,
    clear_folder,
    holds_entries,
    read_marker,
    run_lock,
    write_marker,
)
from taskgraph.run_records import read_log
from taskgraph.spec import Spec, dump_spec, load_spec
from taskgraph.train.batches import Batch, MultiTaskSampler, collate, load_task_data, tokenizer_pad_id
from taskgraph.train.distributed import DataParallel, DistributedError, data_parallel_from_env
from taskgraph.train.evaluate import EvalResult, evaluate
from taskgraph.train.optim import apply_lr, build_optimizer
from taskgraph.train.progress import Progress
from taskgraph.train.run_checkpoint import (
    CHECKPOINTS,
    RunCheckpoint,
    TrainerState,
    capture_rng,
    fault_point,
    list_checkpoints,
    load_optimizer_state,
    read_checkpoint,
    remove_partial,
    restore_rng,
    spec_hash,
    write_checkpoint,
)
from taskgraph.train.tensorboard import TensorBoardLog
from taskgraph.train.text2text_data import LMInfo

LOG, SPEC, SUMMARY, BEST, FINAL = "log.jsonl", "spec.yaml", "train.json", "best", "model"
FAULT_AT_STEP = "TASKGRAPH_FAULT_AT_STEP"  # exit hard after update N (tests)
COMPILE_BACKEND = "TASKGRAPH_COMPILE_BACKEND"  # torch.compile's backend under training.compile (default inductor)


class TrainingError(TaskgraphError):
    """A run cannot start or go on: the output folder holds another run, no CUDA, a non-finite loss, ..."""


@dataclass
class TrainResult:
    """What :func:`train` did: the last step, the final and best validation, speed, and the model."""

    run_dir: Path
    step: int
    completed: bool
    final: EvalResult
    best_step: int | None
    best_mean_acc: float | None
    wall_time_s: float
    examples_per_s: float
    resumed_from: int | None
    model: TaskGraphModel = field(repr=False)
    rank: int = 0  # this process's rank in a data-parallel run (torchrun); rank 0 wrote the run folder
    best_in: str = "best"  # the run folder entry holding the best model: "best", or "model" when it is the final one
    plots: list[Path] = field(default_factory=list)  # RUN/plots/*.png, written at the end


def train(
    spec: Spec,
    out_dir: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] = ".",
    resume: bool = False,
    overwrite: bool = False,
    max_steps: int | None = None,
    device: str = "cpu",
) -> TrainResult:
    """Train ``spec`` into the run directory ``out_dir`` (see the module docstring for its layout).

    Args:
        spec: the run's spec.
        out_dir: the run directory; must be absent or empty unless ``resume`` or ``overwrite``. It is
            marked as a run (:mod:`taskgraph.run_folder`) and locked while this runs; it may not be the
            current directory, ``base_dir`` or a folder above either, nor lie inside another run.
        base_dir: relative data paths in the spec resolve against it (the spec file's folder).
        resume: continue from the newest checkpoint in ``out_dir`` (the spec must be the same).
        overwrite: replace the run in ``out_dir`` — only a folder taskgraph marked as a train run, and
            only once the new spec, model and data have been checked.
        max_steps: stop after this step (the schedule still spans ``training.steps``); a
            checkpoint is written there, so a later ``resume`` goes on.
        device: ``"cpu"`` or ``"cuda"`` (bf16 autocast).

    Started by ``torchrun`` with more than one process, the processes train data-parallel: the global batch
    split across them, rank 0 writing the run folder (:mod:`taskgraph.train.distributed`).

    Raises:
        TrainingError, CheckpointError, DataError, ModelError: with one clear message; on a
        failed resume nothing in ``out_dir`` has been changed.
    """
    training = spec.training
    dev = _device(device)
    if max_steps is not None and max_steps < 1:
        raise TrainingError(f"max_steps must be at least 1, got {max_steps}")
    if resume and overwrite:
        raise TrainingError(
            "resume and overwrite contradict each other: resume continues the run, overwrite starts it afresh; give one"
        )
    stop = training.steps if max_steps is None else min(max_steps, training.steps)
    run = Path(out_dir)
    parallel = data_parallel_from_env(dev)  # torchrun with several processes: data parallel, else None
    with contextlib.ExitStack() as held:
        if parallel is not None:
            held.callback(parallel.close)
            dev = parallel.device
            if training.batch_size < parallel.world:
                raise TrainingError(
                    f"training.batch_size = {training.batch_size} is the whole step's batch, split "
                    f"across {parallel.world} processes: give at least one example per process"
                )
        checkpoint = None
        if parallel is None or parallel.main:  # rank 0 alone reads and writes the run folder
            check_output_folder(run, kind="train", sources=[base_dir])
            if run.is_dir() and (resume or read_marker(run) is not None):  # never a lock file in a stranger's folder
                held.enter_context(run_lock(run, what="run folder"))
            checkpoint = _checkpoint_to_resume(run, spec) if resume else _check_fresh(run, spec, overwrite)
        try:
            return _train(
                spec,
                run,
                held,
                checkpoint,
                base_dir=base_dir,
                overwrite=overwrite,
                stop=stop,
                dev=dev,
                parallel=parallel,
            )
        except DistributedError as exc:
            saved = list_checkpoints(run) if run.is_dir() else []
            last = f"the last checkpoint is {str(saved[-1])!r}" if saved else "no checkpoint was written yet"
            raise DistributedError(
                f"{exc}; {last} (resume: the same command with {opt('resume')}, with any number of processes)"
            ) from None


def _train(
    spec: Spec,
    run: Path,
    held: contextlib.ExitStack,
    checkpoint: RunCheckpoint | None,
    *,
    base_dir: str | os.PathLike[str],
    overwrite: bool,
    stop: int,
    dev: torch.device,
    parallel: DataParallel | None = None,
) -> TrainResult:
    training, cuda = spec.training, dev.type == "cuda"
    main = parallel is None or parallel.main
    with _deterministic(cuda):
        # ---- build everything and check it against the checkpoint; nothing is written yet
        if checkpoint is None:  # (every rank but 0 builds the model afresh and receives rank 0's weights)
            plan_model(spec).check_memory(spec, str(dev))  # counted on the meta device: nothing allocated yet
            _seed_everything(training.seed)
            model = TaskGraphModel(spec).to(dev)
        else:
            model = TaskGraphModel.from_pretrained(checkpoint.folder, device=dev)
        if parallel is not None:
            parallel.broadcast_module(model)
        pad_id = tokenizer_pad_id(model.tokenizer)
        data = load_task_data(
            spec,
            base_dir,
            tokenizer=model.tokenizer,
            pad_id=pad_id,
            vocab_size=model.base.get_input_embeddings().num_embeddings,
            lm=LMInfo.of(model),
        )
        train_data, val_data = data["train"], data["val"]
        names = [t.name for t in train_data]
        sampler = MultiTaskSampler(
            [len(t) for t in train_data], training.sampling, training.sampling_temperature, seed=training.seed
        )
        optimizer = build_optimizer(model, training)
        trainable = [p for group in optimizer.param_groups for p in group["params"]]
        forward = _compiled(model) if training.compile else model  # the training steps' forward
        board = TensorBoardLog.for_spec(spec) if main else TensorBoardLog(None)  # report_to: refused before any write
        fingerprints = {t.name: t.fingerprint() for t in train_data}
        state = TrainerState(step=0, rng={}, sampler={}, data=fingerprints)
        if checkpoint is not None:
            state = checkpoint.state
            _check_same_data(state.data, fingerprints, checkpoint.folder)
            load_optimizer_state(
                optimizer, checkpoint.optimizer_tensors, checkpoint.optimizer_meta, str(checkpoint.folder)
            )
            sampler.load_state_dict(state.sampler)
        if parallel is not None:  # rank 0's step, sampler and optimizer state (a resume) on every rank
            state.step = parallel.share_resume_state(state.step, sampler, optimizer)

        # ---- the run directory: from here on this run writes (rank 0 alone, in a data-parallel run)
        if main and checkpoint is None:
            run.mkdir(parents=True, exist_ok=True)
            held.enter_context(run_lock(run, what="run folder"))
            _check_fresh(run, spec, overwrite)  # again, under the lock: another process may have started
            clear_folder(run)
            write_marker(run, "train", spec.name, spec_hash=spec_hash(spec), spec_dir=str(Path(base_dir).resolve()))
            write_text(run / SPEC, dump_spec(spec))  # the effective spec (with --set): a resume reads it
            (run / LOG).write_bytes(b"")
        elif main:
            if read_marker(run) is None:
                write_marker(
                    run,
                    "train",
                    spec.name,
                    spec_hash=spec_hash(spec),  # a run from before markers
                    spec_dir=str(Path(base_dir).resolve()),
                )
            remove_partial(run)
            _cut_log(run / LOG, state.log_bytes)
            restore_rng(state.rng, cuda)
        resumed_from = state.step if state.step > 0 else None
        board.open(run, resumed_from)
        elapsed_before, session_start = state.elapsed_s, time.perf_counter()
        step_seconds, session_examples = 0.0, 0
        last_eval: tuple[int, EvalResult] | None = None
        log = open(run / LOG if main else os.devnull, "ab")
        quiet = None if main else held.enter_context(open(os.devnull, "w"))  # the other ranks report nothing
        progress = Progress(stop, state.step, spec.name, training.eval_every, stream=quiet)
        try:
            for step in range(state.step + 1, stop + 1):
                tick = time.perf_counter()
                factor = apply_lr(optimizer, step - 1, training)
                batch = collate(sampler.sample(training.batch_size), train_data, pad_id)  # the same on every rank
                optimizer.zero_grad(set_to_none=True)
                loss_value, task_value, reg_value = step_gradients(
                    model, batch, trainable, dev, step, training.seed, parallel, forward
                )
                if not math.isfinite(loss_value):
                    raise TrainingError(
                        _non_finite_message(
                            step,
                            f"the loss is not finite (task loss {task_value}, router regularizer {reg_value})",
                            batch.task_names(names),
                            list_checkpoints(run),
                        )
                    )
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, training.grad_clip or math.inf)  # inf: no clip
                if not math.isfinite(float(grad_norm)):
                    raise TrainingError(
                        _non_finite_message(
                            step,
                            f"the gradient norm is {float(grad_norm)}",
                            batch.task_names(names),
                            list_checkpoints(run),
                        )
                    )
                optimizer.step()

                seconds = time.perf_counter() - tick
                step_seconds, session_examples = step_seconds + seconds, session_examples + batch.size
                state.step, state.examples = step, state.examples + batch.size
                _write_line(
                    log,
                    {
                        "step": step,
                        "split": "train",
                        "loss": loss_value,
                        "task_loss": task_value,
                        "reg_loss": reg_value,
                        "lr_adapters": training.lr.adapters * factor,
                        "examples_per_s": batch.size / max(seconds, 1e-9),
                        "time": elapsed_before + time.perf_counter() - session_start,
                    },
                )
                board.train_step(step, loss_value, task_value, reg_value, optimizer)
                progress.update(step, loss_value, session_examples / max(step_seconds, 1e-9))
                if parallel is None or parallel.faults_here():
                    fault_point(FAULT_AT_STEP, step)

                if main and _scheduled_eval(step, training.eval_every, training.steps):
                    val = evaluate(model, val_data, pad_id=pad_id, device=dev, autocast=cuda)
                    last_eval = (step, val)
                    _write_line(log, val.log_record(step))
                    board.validation(step, val, model)
                    if state.best_mean_acc is None or val.mean_acc > state.best_mean_acc:
                        state.best_step, state.best_mean_acc = step, val.mean_acc
                        _save_model(model, run / BEST, {"step": step, "mean_acc": val.mean_acc, "acc": val.acc})
                if main and (step % training.checkpoint_every == 0 or step == stop):
                    log.flush()
                    state.log_bytes = log.tell()
                    state.elapsed_s = elapsed_before + time.perf_counter() - session_start
                    state.rng, state.sampler = capture_rng(cuda), sampler.state_dict()
                    write_checkpoint(run, model, optimizer, state, spec, training.keep_checkpoints)

            # ---- the end: final validation, the final model, the summary
            if main and (last_eval is None or last_eval[0] != state.step):
                last_eval = (state.step, evaluate(model, val_data, pad_id=pad_id, device=dev, autocast=cuda))
                if not _scheduled_eval(state.step, training.eval_every, training.steps):  # else logged already
                    _write_line(log, last_eval[1].log_record(state.step))
                    board.validation(state.step, last_eval[1], model)
        finally:
            progress.close()
            log.close()
            board.close()
            model.routing_seed = None
        if not main:  # rank 0 validates and writes; the others return its figures once it has
            assert parallel is not None
            return _rank_result(
                parallel.broadcast_json(None),
                run,
                state.step,
                training.steps,
                model,
                parallel.rank,
                resumed_from,
                session_examples / step_seconds if step_seconds > 0 else 0.0,
            )
        assert last_eval is not None
        _save_model(model, run / FINAL, None)
        best_step, best_mean_acc, best_in = _best_with_final(state.best_step, state.best_mean_acc, last_eval)
        result = TrainResult(
            run_dir=run,
            step=state.step,
            completed=state.step == training.steps,
            final=last_eval[1],
            best_step=best_step,
            best_mean_acc=best_mean_acc,
            best_in=best_in,
            wall_time_s=elapsed_before + time.perf_counter() - session_start,
            examples_per_s=session_examples / step_seconds if step_seconds > 0 else 0.0,
            resumed_from=resumed_from,
            model=model,
        )
        write_text(run / SUMMARY, json.dumps(_summary(result, spec, base_dir, dev), indent=2) + "\n")
        from taskgraph.report import write_run_plots  # the report stage draws the finished run (matplotlib)

        result.plots = write_run_plots(run, model=model)  # still under the run's lock
        if parallel is not None:
            parallel.broadcast_json(_shared_result(result))
        return result


def step_gradients(
    model: TaskGraphModel,
    batch: Batch,
    trainable: list[torch.nn.Parameter],
    dev: torch.device,
    step: int,
    seed: int,
    parallel: DataParallel | None = None,
    forward: Callable[..., TaskGraphOutput] | None = None,
) -> tuple[float, float, float]:
    """Forward and backward of one training step; returns ``(loss, task loss, regularizer)`` of the whole batch.

    ``forward`` is the model's forward to call (``torch.compile(model)`` under ``training.compile``; default: the
    model itself).

    With ``parallel`` this process takes its share of ``batch`` (every rank holds the same batch), the router's
    random draws come from the step's shared seed and dropout from this rank's, and the gradients — summed over
    the processes — equal one process's on the whole batch (:mod:`taskgraph.train.distributed`).
    """
    shard = (batch if parallel is None else batch.rows(parallel.shard(batch.size))).to(dev)
    model.train()
    if parallel is not None:  # routing noise shared by every rank, dropout drawn per rank
        model.routing_seed, rank_seed = parallel.step_seeds(seed, step)
        torch.manual_seed(rank_seed)
    with _autocast(dev.type == "cuda"):
        call = model if forward is None else forward
        out = call(
            shard.input_ids,
            shard.attention_mask,
            shard.task_ids,
            shard.labels,
            distinct=(shard.tasks, shard.inverse),
            targets=shard.targets,
        )
        reg_loss = model.router.regularizer()
    share = shard.size / batch.size  # the ranks' gradients sum to the whole batch's
    loss = out.loss + reg_loss if parallel is None else out.loss * share + reg_loss / parallel.world
    loss.backward()
    loss_value, task_value, reg_value = (float(x.detach()) for x in (loss, out.loss, reg_loss))
    if parallel is None:
        return loss_value, task_value, reg_value
    task_value, reg_value = parallel.reduce_gradients(trainable, [task_value * share, reg_value / parallel.world])
    return task_value + reg_value, task_value, reg_value


def _compiled(model: TaskGraphModel) -> Callable[..., TaskGraphOutput]:
    """``torch.compile`` of the model's forward (``training.compile: true``): the same numbers as eager (tests), the
    host reads (task ids checked, one head per distinct task) left as graph breaks. The backend is inductor, or
    ``TASKGRAPH_COMPILE_BACKEND`` (the tests use ``aot_eager``: the tracing without inductor's code generation)."""
    backend = os.environ.get(COMPILE_BACKEND, "").strip() or "inductor"
    return torch.compile(model, backend=backend)  # type: ignore[return-value]


def _shared_result(result: TrainResult) -> dict[str, Any]:
    """What rank 0 tells the other processes at the end of a data-parallel run."""
    final = result.final
    return {
        "final": {"acc": final.acc, "mean_acc": final.mean_acc, "loss": final.loss, "examples": final.examples},
        "best_step": result.best_step,
        "best_mean_acc": result.best_mean_acc,
        "best_in": result.best_in,
        "wall_time_s": result.wall_time_s,
    }


def _rank_result(
    shared: dict[str, Any],
    run: Path,
    step: int,
    total: int,
    model: TaskGraphModel,
    rank: int,
    resumed_from: int | None,
    examples_per_s: float,
) -> TrainResult:
    """Another rank's :class:`TrainResult`: rank 0's validation, this process's model and speed."""
    return TrainResult(
        run_dir=run,
        step=step,
        completed=step == total,
        final=EvalResult(**shared["final"]),
        best_step=shared["best_step"],
        best_mean_acc=shared["best_mean_acc"],
        best_in=shared["best_in"],
        wall_time_s=shared["wall_time_s"],
        examples_per_s=examples_per_s,
        resumed_from=resumed_from,
        model=model,
        rank=rank,
    )


def _best_with_final(step: int | None, acc: float | None, final: tuple[int, EvalResult]) -> tuple[int, float, str]:
    """The best validation counting the final one too, and the folder holding that model.

    A run stopped off the validation schedule (``--max-steps``) is validated at its last step; that
    evaluation counts for the reported best, and its model is ``RUN/model`` (``RUN/best`` keeps the best
    scheduled validation, which a resumed run goes on comparing against).
    """
    final_step, result = final
    if step is None or acc is None or (result.mean_acc > acc and final_step != step):
        return final_step, result.mean_acc, FINAL
    return step, acc, BEST


def _scheduled_eval(step: int, every: int, total: int) -> bool:
    """Whether step ``step`` validates (and may become the best): every ``every`` steps and at the last."""
    return step % every == 0 or step == total


# ----------------------------------------------------------------------------- the run directory
def _check_fresh(run: Path, spec: Spec, overwrite: bool) -> None:
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


def _checkpoint_to_resume(run: Path, spec: Spec) -> RunCheckpoint:
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


def _check_same_data(saved: dict[str, str], now: dict[str, str], folder: Path) -> None:
    changed = sorted(name for name in now if saved.get(name) != now[name])
    if changed or set(saved) != set(now):
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: the training data of task(s) {changed or sorted(saved)} "
            "changed since it was written; resume needs the same data (or start a new run)"
        )


def _cut_log(path: Path, size: int) -> None:
    """Drop log lines written after the checkpoint (they will be written again)."""
    problem = describe(path)
    if problem == "does not exist":
        path.write_bytes(b"")
    elif problem is not None:
        raise CheckpointError(f"the run's log {str(path)!r} {problem}; move it away to resume the run")
    elif path.stat().st_size > size:
        with open(path, "r+b") as handle:
            handle.truncate(size)


def _write_line(log: Any, record: dict[str, Any]) -> None:
    log.write((json.dumps(record) + "\n").encode("utf-8"))


def _save_model(model: TaskGraphModel, target: Path, extra: dict[str, Any] | None) -> None:
    """``save_pretrained`` into a staging folder beside ``target``, then swap it in."""
    staging = staging_dir(target)
    model.save_pretrained(staging)
    if extra is not None:
        write_text(staging / "trainer.json", json.dumps(extra, indent=2) + "\n")
    replace_directory(staging, target)


def _summary(result: TrainResult, spec: Spec, base_dir: str | os.PathLike[str], dev: torch.device) -> dict[str, Any]:
    final = result.final
    return {
        "name": spec.name,
        "steps": result.step,
        "target_steps": spec.training.steps,
        "completed": result.completed,
        "resumed_from": result.resumed_from,
        "wall_time_s": result.wall_time_s,
        "examples_per_s": result.examples_per_s,
        "device": str(dev),
        "final_val": {"step": result.step, "acc": final.acc, "mean_acc": final.mean_acc, "loss": final.loss},
        "best_val": None if result.best_step is None else {"step": result.best_step, "mean_acc": result.best_mean_acc},
        "base_dir": str(Path(base_dir).resolve()),
    }


def _non_finite_message(step: int, what: str, tasks: list[str], saved: list[Path]) -> str:
    last = f"the last good checkpoint is {str(saved[-1])!r}" if saved else "no checkpoint was written yet"
    return (
        f"training stopped at step {step}: {what} on a batch of tasks {tasks}; {last}. Lower the learning "
        f"rates (training.lr) or add warm-up (training.warmup_steps), then start again"
    )


# ----------------------------------------------------------------------------- environment
def _device(name: str) -> torch.device:
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


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


@contextlib.contextmanager
def _deterministic(cuda: bool) -> Iterator[None]:
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


def _autocast(cuda: bool) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
