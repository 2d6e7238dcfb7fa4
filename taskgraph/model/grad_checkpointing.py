"""Gradient checkpointing of a routed base (``training.gradient_checkpointing: true``): each transformer block keeps
only its input in the forward and recomputes its activations in the backward, so a step holds one block's
activations at a time instead of every block's (Chen et al., 2016, "Training Deep Nets with Sublinear Memory Cost").

transformers checkpoints the blocks (its ``GradientCheckpointingLayer`` / ``gradient_checkpointing`` flags); what a
routed model adds is the routing. The adapted layers read the batch's routing from the model's
:class:`~taskgraph.adapters.context.RoutingContext`, which is set only while the forward runs; the recomputation
happens later, inside ``loss.backward()``. So every block is checkpointed with

    torch.utils.checkpoint.checkpoint(block, ..., use_reentrant=False, context_fn=context.checkpoint_contexts)

which captures the routing current when the block first runs and sets it again around the recomputation: the same
``BatchRouting`` object, so the per-batch factors of the fused path (computed once per batch, before the blocks) are
read again, not recomputed, and the per-layer path mixes the same routing rows. Dropout draws are replayed from
the saved random state. The gradients equal the run without checkpointing (tests: every router, an encoder and
causal LMs, mixed-task batches, fused and per-layer paths).

Only non-reentrant checkpointing is used. The reentrant kind would run one backward per block through the routing
graph that every block shares (the router's output and the fused factors), and, with a frozen embedding, would see
a block input that does not require grad and skip the block's backward altogether (what transformers' and PEFT's
``enable_input_require_grads`` works around); the non-reentrant kind saves activations through autograd hooks and
differentiates the graph the first forward built, so neither applies.

``torch.compile`` cannot trace a checkpoint with a ``context_fn`` (Dynamo supports only selective checkpointing's):
the spec refuses ``training.compile`` together with ``training.gradient_checkpointing``. Under checkpointing
transformers turns a decoder's key / value cache off in training; a routed model's forward never builds one
(:meth:`~taskgraph.model.TaskGraphModel.route_hidden`), so both runs compute the same attention.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from taskgraph.adapters.context import RoutingContext
from taskgraph.errors import ModelError


def checkpoint_options(context: RoutingContext) -> dict[str, Any]:
    """The keyword arguments of ``torch.utils.checkpoint.checkpoint`` for a routed model whose layers read ``context``."""
    return {"use_reentrant": False, "context_fn": context.checkpoint_contexts}


def enable_gradient_checkpointing(base: nn.Module, context: RoutingContext) -> None:
    """Checkpoint every transformer block of ``base`` (a transformers model with routed layers reading ``context``).

    Raises:
        ModelError: the base's class does not support gradient checkpointing.
    """
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ModelError(
            f"training.gradient_checkpointing: {type(base).__name__} does not support gradient checkpointing "
            "(transformers' supports_gradient_checkpointing is False); set training.gradient_checkpointing: false"
        )
    options = checkpoint_options(context)
    enable = getattr(base, "activation_checkpointing_enable", None)  # its name from transformers 5
    if enable is not None:
        enable(activation_checkpointing_kwargs=options)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)


def gradient_checkpointing_enabled(base: nn.Module) -> bool:
    """Whether any block of ``base`` is checkpointed."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in base.modules())
