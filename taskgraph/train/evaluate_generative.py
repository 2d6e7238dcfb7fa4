"""Validation of a generative task: the metric its objective reads, without a decoding loop.

* a ``choices`` task: rank-classification accuracy — the likeliest choice (length-normalised log-likelihood,
  one batched pass: :func:`~taskgraph.model.rank_choices.choice_scores`) against the gold one;
* a free-text task: exact match of greedy decoding, read from one teacher-forced pass — greedy writes the target
  and stops exactly when the argmax at every target position (end token included) is the target's token.

The loss is the mean target NLL per example, as in training. A :class:`~taskgraph.train.progress.BatchProgress`
hears of every forward pass (:func:`generative_batches` of them), so a long validation is never silent.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import torch

from taskgraph.data import TaskData, task_batches
from taskgraph.model import forward_batch
from taskgraph.precision import at_least_fp32
from taskgraph.train.progress import BatchProgress

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


@torch.no_grad()
def score_generative(
    model: TaskGraphModel,
    task: TaskData,
    *,
    pad_id: int,
    batch_size: int,
    device: torch.device,
    autocast: contextlib.AbstractContextManager[Any] | None = None,
    progress: BatchProgress | None = None,
) -> tuple[int, float]:
    """``(correct examples, summed example loss)`` of one generative task (the model already in eval mode);
    ``progress`` advances once per forward pass."""
    correct, loss_sum = 0, 0.0
    hits: list[bool] = []
    for batch in task_batches(task, batch_size, pad_id):
        batch = batch.to(device)
        with autocast or contextlib.nullcontext():
            out = forward_batch(model, batch)
        loss_sum += float(at_least_fp32(out.example_loss).sum())
        hits += out.target_hits.tolist()
        if progress is not None:
            progress.advance()
    if task.choices is None:
        return sum(hits), loss_sum
    from taskgraph.model.rank_choices import choice_scores

    prompts = [task.ids[i, : int(task.lengths[i])].tolist() for i in range(len(task))]
    advance = progress.advance if progress is not None else None
    scores = choice_scores(model, task.task_id, prompts, [list(c) for c in task.choices], advance=advance)  # [N, C]
    correct = int((scores.argmax(dim=1) == task.labels).sum())
    return correct, loss_sum


def generative_batches(model: TaskGraphModel, task: TaskData, batch_size: int) -> int:
    """The forward passes :func:`score_generative` takes: the teacher-forced batches, and a ``choices`` task's
    rank-classification passes."""
    from taskgraph.model.rank_choices import choice_passes

    batches = math.ceil(len(task) / batch_size)
    return batches + (choice_passes(model, len(task), len(task.choices)) if task.choices is not None else 0)
