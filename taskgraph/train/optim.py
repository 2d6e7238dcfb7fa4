r"""AdamW with one parameter group per part of the model, and the warm-up + cosine schedule.

Groups (named like ``spec.training.lr``): ``adapters`` (the LoRA inventories), ``router`` (routing
logits, GNN, relation weights — a much larger step, docs/methods.md §2) and ``heads``. Weight decay
applies to ``adapters`` and ``heads``; never to the router, where it would pull the routing
logits towards uniform mixing, a prior the spec did not ask for.

The schedule is a pure function of the step (:func:`lr_multiplier`), so resuming a run needs only
the step number: update ``s`` (0-based) uses ``lr · m(s)`` with

.. math::
    m(s) = \frac{s + 1}{W} \ (s < W), \qquad
    m(s) = \tfrac12\Bigl(1 + \cos\bigl(\pi \tfrac{s - W}{\max(1, N - W)}\bigr)\Bigr) \ (s \ge W)

for ``W`` warm-up steps out of ``N``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from taskgraph.spec.models import TrainingSpec

GROUPS = ("adapters", "router", "heads")
DECAYED = ("adapters", "heads")


def lr_multiplier(step: int, total: int, warmup: int) -> float:
    """The factor on every base learning rate at update ``step`` (0-based) of ``total``.

    Linear warm-up from ``1/warmup`` to 1 over the first ``warmup`` updates, then a half cosine
    from 1 towards 0 (the last update keeps a small positive rate).
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_groups(groups: dict[str, list[nn.Parameter]], training: TrainingSpec) -> list[dict[str, object]]:
    """AdamW parameter groups from ``{"adapters": [...], "router": [...], "heads": [...]}``; empty ones dropped."""
    out: list[dict[str, object]] = []
    for name in GROUPS:
        params = groups.get(name, [])
        if params:
            decay = training.weight_decay if name in DECAYED else 0.0
            out.append({"params": params, "name": name, "lr": getattr(training.lr, name), "weight_decay": decay})
    return out


def build_optimizer(model: nn.Module, training: TrainingSpec) -> torch.optim.AdamW:
    """AdamW over ``model.parameter_groups()`` with the spec's per-group learning rates."""
    groups = parameter_groups(model.parameter_groups(), training)  # type: ignore[operator]
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=training.lr.adapters, betas=(0.9, 0.999), eps=1e-8)


def apply_lr(optimizer: torch.optim.Optimizer, step: int, training: TrainingSpec) -> float:
    """Set every group's learning rate for update ``step`` (0-based); returns the multiplier."""
    factor = lr_multiplier(step, training.steps, training.warmup_steps)
    for group in optimizer.param_groups:
        group["lr"] = getattr(training.lr, group["name"]) * factor
    return factor
