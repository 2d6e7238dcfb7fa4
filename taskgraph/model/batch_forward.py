"""Run a model on a collated :class:`~taskgraph.data.Batch`: every field in its place, the loss included.

Training, adaptation, the oracle's relearning, gradient alignment and generative validation all call the model
this way; ``forward`` may be the model itself or a wrapper of its forward (``torch.compile(model)``)::

    out = forward_batch(model, batch)   # out.loss: the mean loss over the batch's labels and targets
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from taskgraph.model.output import TaskGraphOutput

if TYPE_CHECKING:
    from taskgraph.data.batch import Batch


def forward_batch(forward: Callable[..., TaskGraphOutput], batch: Batch) -> TaskGraphOutput:
    """``forward(input_ids, attention_mask, task_ids, labels, distinct=(tasks, inverse), targets=targets)`` of
    ``batch``: the batch's distinct tasks are not computed again, and its generative rows are scored.

    Args:
        forward: a :class:`~taskgraph.model.TaskGraphModel`, or a callable with its forward's signature.
        batch: the batch, on the model's device.
    """
    return forward(
        batch.input_ids,
        batch.attention_mask,
        batch.task_ids,
        batch.labels,
        distinct=(batch.tasks, batch.inverse),
        targets=batch.targets,
    )
