"""``TaskGraphTrainer``: a ``transformers.Trainer`` that takes ``taskgraph train``'s steps, so its callbacks, loggers
(``report_to``), checkpoints and evaluation work on a :class:`~taskgraph.model.TaskGraphModel`.

    inputs = trainer_inputs(spec, base_dir="configs")
    trainer = TaskGraphTrainer(inputs, TrainingArguments("runs/hf", logging_steps=10, **inputs.training_arguments()))
    trainer.train()
    trainer.save_run("runs/example-hf")          # a run folder: taskgraph eval / predict / adapt / merge read it

What it changes in the Trainer, each the way ``taskgraph train`` does it (:mod:`taskgraph.train.loop`):

- **the loss** (``compute_loss``): the model's task loss + ``router.regularizer()``;
  a non-finite loss stops the run with :class:`~taskgraph.train.run_setup.TrainingError`. Evaluation reports the
  task loss alone, as taskgraph's validation does;
- **the optimizer** (``create_optimizer``): AdamW over the ``adapters`` / ``router`` / ``heads`` groups with the spec's
  learning rates and weight decay (:func:`~taskgraph.train.optim.build_optimizer`); with ``optimizer_cls_and_kwargs``
  the given class over the same groups; ``optimizers=(opt, sched)`` replaces both;
- **the schedule** (``create_scheduler``): the spec's warm-up + cosine over ``training.steps``
  (:func:`~taskgraph.train.optim.lr_multiplier`) as a ``LambdaLR``; ``schedule="args"`` takes the
  ``TrainingArguments``' ``lr_scheduler_type`` and warm-up instead;
- **the order of examples**: :class:`~taskgraph.train.hf_trainer.inputs.TaskGraphSampler` instead of shuffling;
- **the random state**: a fresh run's first step starts from the state ``taskgraph train`` starts from (the spec's
  seed, then the model's initialisation), so dropout draws the same masks; ``TrainingArguments.seed`` does not
  change them;
- **saving**: every model the Trainer saves (``save_model``, its ``checkpoint-N`` folders) is taskgraph's own format
  (``save_pretrained``: safetensors + manifest), and resuming or ``load_best_model_at_end`` reads it back;
  :meth:`TaskGraphTrainer.save_run` writes a whole run folder.

The same curve as ``taskgraph train``. With :meth:`TrainerInputs.training_arguments` (the spec's batch size, steps,
clipping, one batch an update) the Trainer's per-step losses are ``taskgraph train``'s for the same spec on the CPU
(tests/train/test_hf_trainer.py: poly and graph, 20 steps, within 1e-4; bit for bit in practice). On CUDA both run
under bf16 autocast, but the Trainer's (accelerate's) covers the forward and not the router's regularizer, so expect
agreement to bf16 rounding rather than bit for bit (not measured on a GPU yet). What takes a Trainer run off that
curve, each named in a warning when its ``TrainingArguments`` differ from the spec: another batch size, gradient
accumulation, ``max_steps`` (the schedule
still spans ``training.steps``, as under ``taskgraph train --max-steps``) or ``max_grad_norm``.

Not carried over: ``training.compile`` (use ``torch_compile``), ``training.report_to`` (use ``report_to``),
``training.eval_every`` / ``checkpoint_every`` (use ``eval_strategy`` / ``save_strategy``).
``training.gradient_checkpointing`` is the model's own and applies; the Trainer's ``activation_checkpointing``
argument does not (the model is not a ``PreTrainedModel``). Several processes (torchrun) train as accelerate's data
parallelism, whose batches are not ``taskgraph train``'s; FSDP and DeepSpeed are not supported. Written against
transformers 5 and accelerate 1.x (which every ``transformers.Trainer`` needs).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from torch.utils.data import Dataset
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments

from taskgraph.atomic import staging_dir, write_text
from taskgraph.errors import CheckpointError
from taskgraph.model import TaskGraphModel
from taskgraph.model.checkpoint import checkpoint_state
from taskgraph.run_folder import claim_output_run, publish_run
from taskgraph.spec import dump_spec
from taskgraph.train.evaluate import evaluate
from taskgraph.train.hf_trainer.inputs import TaskExamples, TaskGraphSampler, TrainerInputs
from taskgraph.train.optim import build_optimizer, lr_multiplier, parameter_groups
from taskgraph.train.result import TrainResult, run_summary
from taskgraph.train.run_checkpoint import spec_hash
from taskgraph.train.run_setup import FINAL, LOG, SPEC, SUMMARY, TrainingError

SCHEDULES = ("spec", "args")


class TaskGraphTrainer(Trainer):
    """A ``transformers.Trainer`` over :func:`~taskgraph.train.hf_trainer.inputs.trainer_inputs`, stepping as
    ``taskgraph train`` does (the module docstring lists what it changes and why).

    Args:
        inputs: the model, data and collator (:func:`~taskgraph.train.hf_trainer.inputs.trainer_inputs`).
        args: the Trainer's arguments; ``**inputs.training_arguments()`` gives the spec's batch, steps and clipping.
        eval_dataset: what ``evaluate()`` and ``eval_strategy`` score (default: the spec's ``val`` split).
        callbacks: Trainer callbacks, beside the ones ``report_to`` adds.
        compute_metrics: the Trainer's metric function of ``EvalPrediction`` (logits ``[N, C_max]``, labels ``[N]``).
        optimizers: ``(optimizer, scheduler)`` to use instead of taskgraph's (default: ``(None, None)``).
        optimizer_cls_and_kwargs: an optimizer class and its arguments, over taskgraph's parameter groups.
        schedule: ``"spec"`` (taskgraph's warm-up + cosine) or ``"args"`` (the ``TrainingArguments``' scheduler).
            (default: ``"spec"``)

    Attributes:
        history: one ``log.jsonl`` row per update, as ``taskgraph train`` writes them: ``{"step", "split": "train",
            "loss", "task_loss", "reg_loss", "lr_adapters", "time"}``.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a batch mean: the Trainer divides it for accumulation

    def __init__(
        self,
        inputs: TrainerInputs,
        args: TrainingArguments,
        *,
        eval_dataset: Dataset[Any] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
        optimizers: tuple[torch.optim.Optimizer | None, LRScheduler | None] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[torch.optim.Optimizer], dict[str, Any]] | None = None,
        schedule: Literal["spec", "args"] = "spec",
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule {schedule!r}: choose from {list(SCHEDULES)}")
        self.inputs, self.schedule = inputs, schedule
        self.history: list[dict[str, Any]] = []
        self._pending: list[torch.Tensor] = []  # [3] (loss, task loss, regularizer) of each batch of this update
        self._logged = 0  # rows of history already in a Trainer log
        self._start_rng: torch.Tensor | None = inputs.start_rng
        self._started: float | None = None
        self._examples = 0
        departures = argument_departures(args, inputs.training_arguments())
        if departures:
            warnings.warn(
                "these TrainingArguments differ from the spec, so the run will not take taskgraph train's steps: "
                + "; ".join(departures),
                stacklevel=2,
            )
        super().__init__(
            model=inputs.model,
            args=args,
            data_collator=inputs.data_collator,
            train_dataset=inputs.train_dataset,
            eval_dataset=inputs.eval_dataset if eval_dataset is None else eval_dataset,
            callbacks=callbacks,
            compute_metrics=compute_metrics,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
        )

    # ----------------------------------------------------------------------------- the step
    def _get_train_sampler(self, train_dataset: Dataset[Any] | None = None) -> torch.utils.data.Sampler[int] | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if isinstance(dataset, TaskExamples):
            return TaskGraphSampler(dataset, self.inputs.spec.training)
        return super()._get_train_sampler(train_dataset)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training: the task loss + ``router.regularizer()``, as :func:`~taskgraph.train.step.step_gradients` takes
        it; evaluation: the task loss."""
        out = model(**inputs)
        core = self._core(model)
        loss = out.loss
        if core.training:
            reg_loss = core.router.regularizer()
            loss = out.loss + reg_loss
            self._pending.append(torch.stack([x.detach().float() for x in (loss, out.loss, reg_loss)]))  # [3]
        return (loss, {"logits": out.logits}) if return_outputs else loss

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        if self._start_rng is not None:
            if self.state.global_step == 0:  # a fresh run; a resumed one has the Trainer's saved random state
                torch.set_rng_state(self._start_rng)
                if torch.cuda.is_available():
                    torch.cuda.manual_seed_all(self.inputs.spec.training.seed)
            self._start_rng = None
        if self._started is None:
            self._started = time.perf_counter()
        self._examples += int(inputs["input_ids"].shape[0])
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.sync_gradients:  # the update's last batch: its row of the history
            self._record_update()
        return loss

    def _record_update(self) -> None:
        loss, task_loss, reg_loss = torch.stack(self._pending).mean(dim=0).tolist()  # [B_acc, 3] -> 3 floats
        self._pending.clear()
        step = self.state.global_step + 1
        if not math.isfinite(loss):
            raise TrainingError(
                f"training stopped at step {step}: the loss is not finite (task loss {task_loss}, router "
                f"regularizer {reg_loss}); lower the learning rates (training.lr) or add warm-up "
                "(training.warmup_steps), then start again"
            )
        groups = self.optimizer.param_groups
        lr = next((g["lr"] for g in groups if g.get("name") == "adapters"), groups[0]["lr"])
        assert self._started is not None
        self.history.append(
            {
                "step": step,
                "split": "train",
                "loss": loss,
                "task_loss": task_loss,
                "reg_loss": reg_loss,
                "lr_adapters": lr,
                "time": time.perf_counter() - self._started,
            }
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's log, with the mean task loss and router regularizer since the last one beside ``loss``."""
        rows = self.history[self._logged :]
        if "loss" in logs and rows:
            logs["task_loss"] = sum(r["task_loss"] for r in rows) / len(rows)
            logs["reg_loss"] = sum(r["reg_loss"] for r in rows) / len(rows)
            self._logged = len(self.history)
        super().log(logs, start_time)

    # ----------------------------------------------------------------------------- optimizer and schedule
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW over taskgraph's parameter groups (or ``optimizer_cls_and_kwargs``' class over them)."""
        if self.optimizer is None:
            core = self._core(self.model if model is None else model)
            training = self.inputs.spec.training
            if self.optimizer_cls_and_kwargs is None:
                self.optimizer = build_optimizer(core, training)
            else:
                cls, kwargs = self.optimizer_cls_and_kwargs
                self.optimizer = cls(parameter_groups(core.parameter_groups(), training), **kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> LRScheduler:
        """The spec's warm-up + cosine over ``training.steps`` (``schedule="args"``: the Trainer's own)."""
        if self.schedule == "args":
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            training = self.inputs.spec.training
            factor = functools.partial(lr_multiplier, total=training.steps, warmup=training.warmup_steps)
            self.lr_scheduler = LambdaLR(self.optimizer if optimizer is None else optimizer, factor)
            self._created_lr_scheduler = True  # made here: a later train() makes it again
        return self.lr_scheduler

    # ----------------------------------------------------------------------------- saving and loading
    def _save(self, output_dir: str | None = None, state_dict: dict[str, Any] | None = None) -> None:
        """Every model the Trainer saves, in taskgraph's format (``TaskGraphModel.save_pretrained``)."""
        if self.args.should_save:
            self._core(self.model).save_pretrained(self.args.output_dir if output_dir is None else output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        load_weights(self._core(self.model if model is None else model), resume_from_checkpoint)

    def _load_best_model(self) -> None:
        assert self.state.best_model_checkpoint is not None
        load_weights(self._core(self.model), self.state.best_model_checkpoint)

    def save_run(self, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the trained model as a ``taskgraph train`` run folder that ``taskgraph eval`` / ``predict`` /
        ``adapt`` / ``merge`` and :meth:`TaskGraphModel.from_pretrained` read: ``spec.yaml``, ``model/``,
        ``log.jsonl`` (:attr:`history`: the steps this trainer took, and a final validation on the ``val`` split),
        ``train.json`` (its ``base_dir``: the spec's data folder) and the run's marker. Built beside ``out_dir``
        and swapped in (:mod:`taskgraph.run_folder`). It has no ``checkpoints/``: the Trainer's own continue it.

        Args:
            out_dir: the run folder: absent or empty, or (``overwrite``) a taskgraph train run to replace.
            overwrite: replace the train run in ``out_dir``.

        Raises:
            OutputPathError, RunLockedError: ``out_dir`` holds something else, or is being written (nothing changed).
        """
        out = Path(out_dir)
        if not self.args.should_save:  # another process of a data-parallel run: the main one writes
            return out
        model, spec, base_dir = self._core(self.model), self.inputs.spec, self.inputs.base_dir
        step = self.state.global_step
        dev = model.device
        val = evaluate(
            model,
            self.inputs.eval_dataset.data,
            pad_id=self.inputs.data_collator.pad_id,
            device=dev,
            autocast=dev.type == "cuda",
        )
        seconds = self.history[-1]["time"] if self.history else 0.0
        first = self.history[0]["step"] if self.history else step + 1
        result = TrainResult(
            run_dir=out,
            step=step,
            completed=step == spec.training.steps,
            final=val,
            best_step=None,  # no best/ folder: the Trainer's load_best_model_at_end picks the best, if asked
            best_mean_acc=None,
            wall_time_s=seconds,
            examples_per_s=self._examples / seconds if seconds > 0 else 0.0,
            resumed_from=first - 1 if first > 1 else None,  # a Trainer resumed from its checkpoint-N
            model=model,
        )
        summary = {**run_summary(result, spec, base_dir, dev), "trainer": "transformers.Trainer"}
        with claim_output_run(out, kind="train", sources=[base_dir], overwrite=overwrite) as folder:
            staging = staging_dir(folder)
            try:
                write_text(staging / SPEC, dump_spec(spec))
                model.save_pretrained(staging / FINAL)
                rows = [*self.history, val.log_record(step)]
                write_text(staging / LOG, "".join(json.dumps(row) + "\n" for row in rows))
                write_text(staging / SUMMARY, json.dumps(summary, indent=2) + "\n")
                publish_run(
                    staging, folder, kind="train", name=spec.name, spec_hash=spec_hash(spec), spec_dir=str(base_dir)
                )
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        return out

    def _core(self, model: nn.Module) -> TaskGraphModel:
        core = self.accelerator.unwrap_model(model)
        assert isinstance(core, TaskGraphModel), type(core).__name__
        return core

    def __repr__(self) -> str:
        return (
            f"TaskGraphTrainer(spec={self.inputs.spec.name!r}, router={self.inputs.spec.router.kind!r}, "
            f"step={self.state.global_step}, schedule={self.schedule!r})"
        )


def argument_departures(args: TrainingArguments, wanted: dict[str, Any]) -> list[str]:
    """``"name = value (taskgraph train: X)"`` for every field of ``wanted`` that ``args`` sets otherwise."""
    return [
        f"{name} = {getattr(args, name)!r} (taskgraph train: {value!r})"
        for name, value in wanted.items()
        if getattr(args, name) != value
    ]


def load_weights(model: TaskGraphModel, folder: str | os.PathLike[str]) -> None:
    """Load the weights a Trainer checkpoint (``save_pretrained``) holds into ``model``, checked as
    :meth:`TaskGraphModel.from_pretrained` checks them; the checkpoint's spec must be ``model``'s. The checkpoint is
    rebuilt whole first (a base loaded from ``model.path`` is loaded again, for a moment twice in memory).

    Raises:
        CheckpointError: the folder is not a checkpoint of this spec.
    """
    saved = TaskGraphModel.from_pretrained(folder)
    if spec_hash(saved.spec) != spec_hash(model.spec):
        raise CheckpointError(
            f"checkpoint {str(folder)!r} was saved for another spec ({saved.spec.name!r}); resume with the spec "
            f"it was trained with"
        )
    with_base = saved.spec.model.config is not None
    result = model.load_state_dict(checkpoint_state(saved, with_base), strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
