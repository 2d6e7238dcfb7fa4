"""The routing of the current batch, shared by every adapted layer of a model.

The caller (``TaskGraphModel``) computes the distinct tasks of a batch and the example → task
index once, asks the router for those U tasks, and sets the result on the model's one
:class:`RoutingContext` for the duration of the forward pass::

    tasks, inverse = distinct_tasks(task_ids)                 # [U], [B]   (once per batch)
    with context.use(BatchRouting(router(tasks), inverse)):
        out = transformer(input_ids, attention_mask=mask)     # every RoutedLoRALinear reads it

Layers only read ``context.current``; they never compute ``unique`` or read tensors on the host
in training. ``factors`` holds every layer's per-example factors when the model computed them for all
layers at once (:class:`~taskgraph.adapters.fused.FusedFactors`, the fused path); without it each layer
mixes its own.

A backward pass that recomputes a block's forward (gradient checkpointing) runs after the ``with`` block has
ended; :meth:`RoutingContext.checkpoint_contexts` is the ``context_fn`` of ``torch.utils.checkpoint`` that sets,
around each recomputation, the routing that was current when the block first ran — the same tensors, factors
included, so nothing is mixed again and the gradients reach the router and the inventories through the graph
the first forward built.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor

from taskgraph.routing.base import Routing


@dataclass
class BatchRouting:
    """The routing of one batch.

    Args:
        routing: rows for the U distinct tasks of the batch: gates ``[U, L]``, weights
            ``[U, L, H, K]``, choice ``[U, L, H]`` or None.
        inverse: ``[B]`` long, example b → its row of ``routing``.
        factors: per routing column l, the layer's per-example factors ``(a [B, d_in, r'], b [B, r', d_out])``
            with gate and scaling folded into ``b`` (the fused path), or None: each layer mixes its own.
    """

    routing: Routing
    inverse: Tensor
    factors: Sequence[tuple[Tensor, Tensor]] | None = None
    _open: list[Tensor | None] | None = field(default=None, init=False, repr=False)

    def open_rows(self, column: int) -> Tensor | None:
        """Inference: the examples whose gate at routing column ``column`` is open; None when all are.

        The gates of every example and layer are read on the host once per batch (the first call), not
        once per layer.
        """
        if self._open is None:
            open_ = (self.routing.gates.index_select(0, self.inverse) != 0).cpu()  # [B, L] (one host sync)
            every = open_.all(0).tolist()  # [L]
            device = self.inverse.device
            self._open = [
                None if every[l] else open_[:, l].nonzero().squeeze(1).to(device) for l in range(open_.shape[1])
            ]
        return self._open[column]

    def __repr__(self) -> str:
        return (
            f"BatchRouting(tasks={self.routing.num_tasks}, examples={self.inverse.shape[0]}, "
            f"weights={tuple(self.routing.weights.shape)}, choice={self.routing.choice is not None}, "
            f"fused={self.factors is not None})"
        )


def distinct_tasks(task_ids: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct task ids of a batch and the example → row index, computed once per batch.

    Args:
        task_ids: ``[B]`` long task id of every example.

    Returns:
        ``(tasks [U], inverse [B])`` with ``tasks[inverse] == task_ids``; tasks sorted ascending.
    """
    tasks, inverse = torch.unique(task_ids, sorted=True, return_inverse=True)  # [U], [B]
    return tasks, inverse


class RoutingContext:
    """Holds the :class:`BatchRouting` of the batch being run; one object per model.

    Every :class:`~taskgraph.adapters.routed_lora.RoutedLoRALinear` of a model keeps a reference
    to the same context and reads :attr:`current` in its forward.
    """

    def __init__(self) -> None:
        self.current: BatchRouting | None = None

    def use(self, batch: BatchRouting) -> AbstractContextManager[None]:
        """Set :attr:`current` to ``batch`` inside the ``with`` block; restore the previous value after."""
        return RoutingScope(self, batch)

    def checkpoint_contexts(self) -> tuple[AbstractContextManager[None], AbstractContextManager[None]]:
        """``context_fn`` of ``torch.utils.checkpoint.checkpoint`` (non-reentrant): called when a checkpointed block
        runs forward, it returns nothing to wrap that forward in and, for its recomputation in the backward (the
        ``with`` block of :meth:`use` has ended by then), the batch routing current now — a scope entered again by
        every backward pass that recomputes the block (several when the graph is kept, ``retain_graph=True``)."""
        batch = self.current
        return nullcontext(), (nullcontext() if batch is None else self.use(batch))

    def __repr__(self) -> str:
        return f"RoutingContext(current={self.current!r})"


class RoutingScope:
    """``context.current = batch`` inside a ``with`` block, the previous value restored after (what
    :meth:`RoutingContext.use` returns). Unlike a generator-based context manager it can be entered again after it
    exits, as a block's recomputation is in each backward pass through a kept graph."""

    def __init__(self, context: RoutingContext, batch: BatchRouting) -> None:
        self.context, self.batch = context, batch
        self._previous: list[BatchRouting | None] = []  # a stack: entered again before it exits, it still restores

    def __enter__(self) -> None:
        self._previous.append(self.context.current)
        self.context.current = self.batch

    def __exit__(self, *exc: object) -> None:
        self.context.current = self._previous.pop()
