"""What :meth:`~taskgraph.model.TaskGraphModel.forward` returns, and the task ids it takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from taskgraph.routing.base import Routing

TaskIds = Tensor | Sequence[int] | Sequence[str] | int | str  # ids or names: one per example, or one for the batch


@dataclass
class TaskGraphOutput:
    """What :meth:`TaskGraphModel.forward` returns.

    Args:
        logits: ``[B, C_max]``; entries past an example's own label count hold the dtype's most
            negative value (probability 0, never the argmax).
        loss: mean cross-entropy over the batch when labels were given, else None.
        routing: the router's output for the distinct tasks of the batch (``[U, L]``, ``[U, L, H, K]``).
        tasks: ``[U]`` the distinct task ids, sorted.
        inverse: ``[B]`` example -> row of ``tasks``.
        example_loss: ``[B]`` each example's loss (a generative model with labels or targets; see
            :mod:`taskgraph.model.lm_forward`), else None.
        target_hits: ``[B]`` bool, the example's target is what greedy decoding writes (teacher-forced
            argmax on every target token; given targets), else None.
    """

    logits: Tensor
    loss: Tensor | None
    routing: Routing
    tasks: Tensor
    inverse: Tensor
    example_loss: Tensor | None = None
    target_hits: Tensor | None = None
