"""What a ``transformers.Trainer`` needs to train a :class:`~taskgraph.model.TaskGraphModel`, built as
``taskgraph train`` builds it: the model, the examples, the order they are drawn in, and the collator.

    inputs = trainer_inputs(spec, base_dir="configs")
    args = TrainingArguments("runs/hf", logging_steps=10, **inputs.training_arguments())

A dataset item is one example, ``(TaskData, row)`` (:class:`TaskExamples`); :class:`TaskGraphSampler` yields the
items in the order :class:`~taskgraph.train.batches.MultiTaskSampler` draws them, ``training.batch_size`` at a
time, so a Trainer with ``per_device_train_batch_size = training.batch_size`` sees the batches ``taskgraph train``
sees; :class:`TaskCollator` stacks a batch with :func:`~taskgraph.data.collate` into the model's keyword
arguments (``input_ids``, ``attention_mask``, ``task_ids``, ``labels``, ``distinct`` and, with generative rows,
``targets``). Items are tuples, not dicts, so the Trainer's ``remove_unused_columns`` leaves them alone.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from taskgraph.data import Batch, TaskData, collate, tokenizer_pad_id
from taskgraph.model import TaskGraphModel, fill_task_features
from taskgraph.model.footprint import plan_model
from taskgraph.spec import Spec
from taskgraph.spec.models import TrainingSpec
from taskgraph.train.batches import MultiTaskSampler, load_model_data
from taskgraph.train.run_setup import seed_everything

Example = tuple[TaskData, int]  # one example: its task's encoded split and its row there


class TaskExamples(Dataset[Example]):
    """Every example of one split, all tasks in ``spec.tasks`` order: item ``i`` is ``(TaskData, row)``.

    Args:
        data: one :class:`~taskgraph.data.TaskData` per task, ``data[t].task_id == t``.
    """

    def __init__(self, data: Sequence[TaskData]) -> None:
        self.data = list(data)
        sizes = [len(t) for t in self.data]
        self.offsets = [sum(sizes[:t]) for t in range(len(sizes))]  # [T] index of each task's row 0
        self.total = sum(sizes)

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> Example:
        if not 0 <= index < self.total:
            raise IndexError(f"example {index} of {self.total}")
        task = (
            bisect.bisect_right(self.offsets, index) - 1
        )  # the last task starting at or before it (never an empty one)
        return self.data[task], index - self.offsets[task]

    def index(self, task: int, row: int) -> int:
        """The item of ``task``'s row ``row``."""
        return self.offsets[task] + row

    def __repr__(self) -> str:
        return f"TaskExamples(tasks={len(self.data)}, examples={self.total})"


class TaskGraphSampler(Sampler[int]):
    """The items of a :class:`TaskExamples` in the order ``taskgraph train`` draws its examples: a fresh
    :class:`~taskgraph.train.batches.MultiTaskSampler` (the spec's sampling, temperature and seed), ``batch_size``
    pairs a draw, ``steps × batch_size`` items an epoch.

    Epoch ``e`` (the Trainer's ``set_epoch``) goes on where epoch ``e − 1`` stopped, as one long run of
    ``taskgraph train`` would; a Trainer resuming mid-epoch skips the batches it trained, which this order
    gives again.
    """

    def __init__(self, examples: TaskExamples, training: TrainingSpec) -> None:
        self.examples = examples
        self.training = training
        self.epoch = 0

    def __len__(self) -> int:
        return self.training.steps * self.training.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        training = self.training
        sampler = MultiTaskSampler(
            [len(t) for t in self.examples.data], training.sampling, training.sampling_temperature, seed=training.seed
        )
        for _ in range(self.epoch * training.steps):  # the epochs before this one
            sampler.sample(training.batch_size)
        for _ in range(training.steps):
            for task, row in sampler.sample(training.batch_size):
                yield self.examples.index(task, row)

    def __repr__(self) -> str:
        return (
            f"TaskGraphSampler(steps={self.training.steps}, batch_size={self.training.batch_size}, epoch={self.epoch})"
        )


@dataclass(frozen=True)
class TaskCollator:
    """Items ``(TaskData, row)`` → the model's keyword arguments, through :func:`~taskgraph.data.collate`.

    Shapes:
        ``input_ids``, ``attention_mask`` ``[B, S]``; ``task_ids``, ``labels`` ``[B]``; ``distinct``:
        ``(tasks [U], inverse [B])``; ``targets`` (a batch with generative rows) ``[B, S]`` or ``[B, T]``.
    """

    pad_id: int

    def __call__(self, items: Sequence[Example]) -> dict[str, Any]:
        data = {task.task_id: task for task, _ in items}
        return model_inputs(collate([(task.task_id, row) for task, row in items], data, self.pad_id))


def model_inputs(batch: Batch) -> dict[str, Any]:
    """A :class:`~taskgraph.data.Batch` as :meth:`TaskGraphModel.forward`'s keyword arguments."""
    inputs: dict[str, Any] = {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "task_ids": batch.task_ids,
        "labels": batch.labels,
        "distinct": (batch.tasks, batch.inverse),
    }
    if batch.targets is not None:
        inputs["targets"] = batch.targets
    return inputs


@dataclass
class TrainerInputs:
    """The model, data and collator of a spec, built as ``taskgraph train`` builds them (:func:`trainer_inputs`).

    Args:
        spec: the run's spec.
        base_dir: the folder the spec's relative data paths resolve against (absolute).
        model: the model, seeded with ``training.seed`` as ``taskgraph train`` seeds it.
        train_dataset: the ``train`` split's examples.
        eval_dataset: the ``val`` split's examples.
        data_collator: stacks a list of examples into the model's inputs.
        start_rng: torch's CPU random state ``taskgraph train`` starts its first step from (its dropout draws).
    """

    spec: Spec
    base_dir: Path
    model: TaskGraphModel
    train_dataset: TaskExamples
    eval_dataset: TaskExamples
    data_collator: TaskCollator
    start_rng: Tensor

    def training_arguments(self) -> dict[str, Any]:
        """The ``TrainingArguments`` fields that make a Trainer step as ``taskgraph train`` steps: the spec's batch
        size, steps and gradient clipping (0: none), one batch an update, and bf16 autocast where there is CUDA::

            TrainingArguments("runs/hf", logging_steps=1, **inputs.training_arguments())
        """
        training = self.spec.training
        return {
            "per_device_train_batch_size": training.batch_size,
            "gradient_accumulation_steps": 1,
            "max_steps": training.steps,
            "max_grad_norm": training.grad_clip or 0.0,
            "bf16": torch.cuda.is_available(),
        }

    def __repr__(self) -> str:
        return (
            f"TrainerInputs(spec={self.spec.name!r}, router={self.spec.router.kind!r}, train={self.train_dataset!r}, "
            f"eval={self.eval_dataset!r})"
        )


def trainer_inputs(spec: Spec, *, base_dir: str | os.PathLike[str] = ".") -> TrainerInputs:
    """Build what a ``transformers.Trainer`` needs to train ``spec``, the way ``taskgraph train`` builds its run.

    The memory check, the seed, the model (on the CPU; the Trainer moves it), the ``train`` and ``val`` splits
    encoded once, and the random state the first training step starts from.

    Args:
        spec: the run's spec.
        base_dir: relative data paths in the spec resolve against it (the spec file's folder).

    Raises:
        ModelError, DataError: the model cannot be built, or a task's data cannot be read (one clear message).
    """
    plan_model(spec).check_memory(spec, "cuda" if torch.cuda.is_available() else "cpu")
    seed_everything(spec.training.seed)
    model = TaskGraphModel(spec)
    pad_id = tokenizer_pad_id(model.tokenizer)
    data = load_model_data(model, spec, base_dir)
    fill_task_features(model, spec, data["train"], base_dir)  # the graph router's side features, if it reads any
    return TrainerInputs(
        spec=spec,
        base_dir=Path(base_dir).resolve(),
        model=model,
        train_dataset=TaskExamples(data["train"]),
        eval_dataset=TaskExamples(data["val"]),
        data_collator=TaskCollator(pad_id),
        start_rng=torch.get_rng_state(),
    )
