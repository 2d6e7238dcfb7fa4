"""Gradient alignment of a trained model's tasks: the cosine between their adapter gradients.

    cos = model_gradient_alignment(model, data, pad_id=0)      # [T, T], data: one TaskData per task

Per task, ``batches`` batches of ``batch_size`` rows drawn from its data without replacement (seeded
by ``seed``, so a rerun takes the same rows, and tasks with the same data take the same rows); the loss is the model's cross-entropy
(a generative task's: its target NLL) on them with the model in eval mode (inference routing, no dropout: the gradient is deterministic);
the gradient is taken w.r.t. the adapter inventories (``model.adapter_parameters()``), averaged over
the task's batches; then :func:`~taskgraph.metrics.alignment.cosine_matrix`. No ``.grad`` of the
model is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from taskgraph.data import Batch, TaskData, collate
from taskgraph.metrics import gradient_cosine
from taskgraph.model import TaskGraphModel, forward_batch
from taskgraph.model.modes import inference_mode_of

ALIGNMENT_BATCHES = 2
ALIGNMENT_BATCH_SIZE = 32


def seeded_batches(
    data: TaskData,
    *,
    pad_id: int,
    batches: int = ALIGNMENT_BATCHES,
    batch_size: int = ALIGNMENT_BATCH_SIZE,
    seed: int = 0,
) -> list[Batch]:
    """Up to ``batches`` batches of ``batch_size`` distinct rows of one task (fewer when it has fewer rows)."""
    gen = torch.Generator().manual_seed(int(seed))  # not by task: two tasks with the same data get the same rows
    order = torch.randperm(len(data), generator=gen)[: batches * batch_size].tolist()  # [≤ batches·batch_size]
    return [
        collate([(data.task_id, r) for r in order[i : i + batch_size]], {data.task_id: data}, pad_id)
        for i in range(0, len(order), batch_size)
    ]


def model_gradient_alignment(
    model: TaskGraphModel,
    data: Sequence[TaskData],
    *,
    pad_id: int,
    batches: int = ALIGNMENT_BATCHES,
    batch_size: int = ALIGNMENT_BATCH_SIZE,
    seed: int = 0,
) -> Tensor:
    """``[T, T]`` cosine between the tasks' adapter gradients (rows in the order of ``data``).

    Raises:
        ValueError: a task has no example, or the model has no trainable adapter parameter.
    """
    per_task = [seeded_batches(d, pad_id=pad_id, batches=batches, batch_size=batch_size, seed=seed) for d in data]
    empty = [d.name for d, b in zip(data, per_task) if not b]
    if empty:
        raise ValueError(f"tasks {empty} have no example to take a gradient on")

    def loss_of(batch: Batch) -> Tensor:
        batch = batch.to(model.device)
        out = forward_batch(model, batch)
        assert out.loss is not None  # labels were given
        return out.loss

    with inference_mode_of(model):
        return gradient_cosine(loss_of, model.adapter_parameters(), per_task)
