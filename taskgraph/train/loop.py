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
    RUN/plots/           loss, validation accuracy, relations, routing and gates: drawn by the report stage after
                         training (``taskgraph train`` does; in Python, ``taskgraph.write_run_plots(run)``)
    RUN/.taskgraph-run.json, RUN/.taskgraph.lock   the run's marker (identity, the spec's folder) and its lock
                         (taskgraph.run_folder)

The run's setup and folder checks are :mod:`taskgraph.train.run_setup`, one step's forward and
backward :mod:`taskgraph.train.step`, what it returns and records :mod:`taskgraph.train.result`.

Progress goes to stderr: a bar on a terminal, a line every ``eval_every`` steps or 30 s elsewhere
(:mod:`taskgraph.train.progress`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from taskgraph.atomic import write_text
from taskgraph.data import collate, tokenizer_pad_id
from taskgraph.errors import opt
from taskgraph.model import TaskGraphModel, fill_task_features
from taskgraph.model.footprint import plan_model
from taskgraph.run_folder import check_output_folder, read_marker, run_lock
from taskgraph.spec import Spec
from taskgraph.threads import check_threads, torch_threads
from taskgraph.train.batches import MultiTaskSampler, load_model_data
from taskgraph.train.distributed import DataParallel, DistributedError, data_parallel_from_env
from taskgraph.train.evaluate import EvalResult
from taskgraph.train.fsdp import ShardedBase, shard_base, whole_base
from taskgraph.train.optim import apply_lr, build_optimizer
from taskgraph.train.progress import Progress
from taskgraph.train.result import TrainResult, best_with_final, rank_result, run_summary, shared_result
from taskgraph.train.run_checkpoint import (
    RunCheckpoint,
    TrainerState,
    capture_rng,
    fault_point,
    list_checkpoints,
    load_optimizer_state,
    restore_rng,
    save_model,
    write_checkpoint,
)
from taskgraph.train.run_setup import (
    BEST,
    FINAL,
    LOG,
    SUMMARY,
    TrainingError,
    check_fresh,
    check_same_data,
    checkpoint_to_resume,
    deterministic,
    open_run_folder,
    resolve_device,
    seed_everything,
)
from taskgraph.train.step import compiled_forward, step_gradients
from taskgraph.train.tensorboard import TensorBoardLog
from taskgraph.train.validation import run_validation, scheduled_eval

FAULT_AT_STEP = "TASKGRAPH_FAULT_AT_STEP"  # exit hard after update N (tests)


def train(
    spec: Spec,
    out_dir: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] = ".",
    resume: bool = False,
    overwrite: bool = False,
    max_steps: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
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
            only once the new spec, model and data have been checked. What taskgraph did not write there (a
            ``graph.html`` exported into the run) is kept and named in :attr:`TrainResult.kept`.
        max_steps: stop after this step (the schedule still spans ``training.steps``); a
            checkpoint is written there, so a later ``resume`` goes on.
        device: ``"cpu"`` or ``"cuda"`` (bf16 autocast).
        threads: torch's CPU threads while the run trains; None (default) takes the cores the machine's load
            leaves free, as ``taskgraph train`` does (:mod:`taskgraph.threads`: torch's own default of one
            thread per core runs many times slower beside a busy neighbour). The caller's thread count is
            restored when the run ends.

    Started by ``torchrun`` with more than one process, the processes train data-parallel: the global batch
    split across them, rank 0 writing the run folder (:mod:`taskgraph.train.distributed`); with
    ``training.parallel: fsdp`` the frozen base is sharded across them (:mod:`taskgraph.train.fsdp`; one process
    trains unsharded).

    Raises:
        TrainingError, CheckpointError, DataError, ModelError: with one clear message; on a
        failed resume nothing in ``out_dir`` has been changed.
    """
    training = spec.training
    dev = resolve_device(device)
    if max_steps is not None and max_steps < 1:
        raise TrainingError(f"max_steps must be at least 1, got {max_steps}")
    if resume and overwrite:
        raise TrainingError(
            "resume and overwrite contradict each other: resume continues the run, overwrite starts it afresh; give one"
        )
    check_threads(threads)
    stop = training.steps if max_steps is None else min(max_steps, training.steps)
    run = Path(out_dir)
    parallel = data_parallel_from_env(dev)  # torchrun with several processes: data parallel, else None
    with contextlib.ExitStack() as held:
        held.enter_context(torch_threads(threads))  # the caller's count back when the run ends
        if parallel is not None:
            held.push(parallel.leave)  # on an error, the launcher's SIGTERM must not cut the message short
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
            checkpoint = checkpoint_to_resume(run, spec) if resume else check_fresh(run, spec, overwrite)
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
    with deterministic(cuda):
        # ---- build everything and check it against the checkpoint; nothing is written yet
        if checkpoint is None:  # (every rank but 0 builds the model afresh and receives rank 0's weights)
            plan_model(spec).check_memory(spec, str(dev))  # counted on the meta device: nothing allocated yet
            seed_everything(training.seed)
            model = TaskGraphModel(spec).to(dev)
        else:
            model = TaskGraphModel.from_pretrained(checkpoint.folder, device=dev)
        shards: ShardedBase | None = None
        if parallel is not None:
            parallel.broadcast_module(model)
            if training.parallel == "fsdp":  # the base's weights: 1 / world on each process from here on
                shards = shard_base(model, parallel)
        evaluates = main or shards is not None  # every process runs a sharded base's forward, rank 0 records
        pad_id = tokenizer_pad_id(model.tokenizer)
        data = load_model_data(model, spec, base_dir)
        train_data, val_data = data["train"], data["val"]
        if checkpoint is None:  # the graph router's side features (router.features): a resume reads them back
            fill_task_features(model, spec, train_data, base_dir)
        names = [t.name for t in train_data]
        sampler = MultiTaskSampler(
            [len(t) for t in train_data], training.sampling, training.sampling_temperature, seed=training.seed
        )
        optimizer = build_optimizer(model, training)
        trainable = [p for group in optimizer.param_groups for p in group["params"]]
        forward = compiled_forward(model) if training.compile else model  # the training steps' forward
        board = TensorBoardLog.for_spec(spec) if main else TensorBoardLog(None)  # report_to: refused before any write
        fingerprints = {t.name: t.fingerprint() for t in train_data}
        state = TrainerState(step=0, rng={}, sampler={}, data=fingerprints)
        if checkpoint is not None:
            state = checkpoint.state
            check_same_data(state.data, fingerprints, checkpoint.folder)
            load_optimizer_state(
                optimizer, checkpoint.optimizer_tensors, checkpoint.optimizer_meta, str(checkpoint.folder)
            )
            sampler.load_state_dict(state.sampler)
        if parallel is not None:  # rank 0's step, sampler and optimizer state (a resume) on every rank
            state.step = parallel.share_resume_state(state.step, sampler, optimizer)

        # ---- the run directory: from here on this run writes (rank 0 alone, in a data-parallel run)
        kept: list[str] = []
        if main:
            kept = open_run_folder(run, held, spec, base_dir, overwrite, fresh=checkpoint is None, log=state.log_bytes)
            if checkpoint is not None:
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
                what = f"the loss is not finite (task loss {task_value}, router regularizer {reg_value})"
                _stop_unless_finite(loss_value, what, step, batch.task_names(names), run)
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, training.grad_clip or math.inf)  # inf: no clip
                what = f"the gradient norm is {float(grad_norm)}"
                _stop_unless_finite(float(grad_norm), what, step, batch.task_names(names), run)
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

                if evaluates and scheduled_eval(step, training.eval_every, training.steps):
                    val = run_validation(model, val_data, pad_id, dev, shards, quiet)
                    last_eval = (step, val)
                    better = state.best_mean_acc is None or val.mean_acc > state.best_mean_acc
                    if shards is not None:  # rank 0's record decides (the others' may not hold the best so far)
                        better = bool(shards.parallel.broadcast_json(better))
                    if main:
                        _write_line(log, val.log_record(step))
                        board.validation(step, val, model)
                    if better:
                        state.best_step, state.best_mean_acc = step, val.mean_acc
                        with whole_base(shards, model):
                            if main:
                                save_model(model, run / BEST, {"step": step, "mean_acc": val.mean_acc, "acc": val.acc})
                if evaluates and (step % training.checkpoint_every == 0 or step == stop):
                    with whole_base(shards, model):
                        if main:
                            log.flush()
                            state.log_bytes = log.tell()
                            state.elapsed_s = elapsed_before + time.perf_counter() - session_start
                            state.rng, state.sampler = capture_rng(cuda), sampler.state_dict()
                            write_checkpoint(run, model, optimizer, state, spec, training.keep_checkpoints)

            # ---- the end: final validation, the final model, the summary
            if evaluates and (last_eval is None or last_eval[0] != state.step):
                last_eval = (state.step, run_validation(model, val_data, pad_id, dev, shards, quiet))
                if main and not scheduled_eval(state.step, training.eval_every, training.steps):  # else logged
                    _write_line(log, last_eval[1].log_record(state.step))
                    board.validation(state.step, last_eval[1], model)
            with whole_base(shards, model):
                if main:
                    save_model(model, run / FINAL, None)
        finally:
            progress.close()
            log.close()
            board.close()
            model.routing_seed = None
        if not main:  # rank 0 validates and writes; the others return its figures once it has
            assert parallel is not None
            return rank_result(
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
        best_step, best_mean_acc, best_in = best_with_final(state.best_step, state.best_mean_acc, last_eval)
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
            kept=kept,
        )
        world, backend = (1, None) if parallel is None else (parallel.world, parallel.backend)
        summary = run_summary(result, spec, base_dir, dev, processes=world, backend=backend)
        write_text(run / SUMMARY, json.dumps(summary, indent=2) + "\n")
        if parallel is not None:
            parallel.broadcast_json(shared_result(result))
        return result


def _write_line(log: Any, record: dict[str, Any]) -> None:
    log.write((json.dumps(record) + "\n").encode("utf-8"))


def _stop_unless_finite(value: float, what: str, step: int, tasks: list[str], run: Path) -> None:
    """A ``TrainingError`` naming the step, the batch's tasks and the last good checkpoint when ``value`` is NaN / inf."""
    if math.isfinite(value):
        return
    saved = list_checkpoints(run)
    last = f"the last good checkpoint is {str(saved[-1])!r}" if saved else "no checkpoint was written yet"
    raise TrainingError(
        f"training stopped at step {step}: {what} on a batch of tasks {tasks}; {last}. Lower the learning "
        f"rates (training.lr) or add warm-up (training.warmup_steps), then start again"
    )
