"""The adaptation modes: which (router, mode) pairs exist, how the new task is added, what is trained.

Each router class states its own facts (:attr:`~taskgraph.routing.base.Router.adapt_modes`,
:meth:`~taskgraph.routing.base.Router.adaptation_plan`); this module checks a pair and turns a plan into
the trainable entries.

=========  ==========================================================================================
mode       what phase 1 trains (the new task's head is refit the same way in every mode afterwards)
=========  ==========================================================================================
full       the new task's routing (its row; the graph router: its node) **and** every adapter
           (``private``: the new task's own new LoRA, the only adapter it uses). Other tasks change.
routing    MHR-z: the new task's routing row / node only; every skill frozen. Other tasks do not change.
mhr-mu     MHR-μ: the new task starts from the uniform average of the skills and tunes that one
           adapter. ``poly`` / ``mhr``: the average is materialised as a skill only the new task uses
           (its routing is exactly one-hot on it, every other task weighs it exactly 0), so other
           tasks do not change; ``private``: the new task's own LoRA starts at the average of the private
           LoRAs; ``shared`` / ``mhr-mu`` (no routing: every task already mixes all skills uniformly):
           the skills themselves are tuned, which tunes their average exactly, and other tasks change.
zero-shot  graph router only: a new node routed from the given relations; no gradient step at all.
=========  ==========================================================================================

Trainable entries are given as ``(parameter, mask)``: a gradient hook zeroes the gradient outside
the mask, and with no weight decay AdamW then leaves those entries bit for bit unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from taskgraph.errors import ModelError, opt
from taskgraph.model import TaskGraphModel
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import ADAPT_MODES, AdaptationPlan

_WHY = {
    "zero-shot": "zero-shot routes a new task from its relations, which only the graph router can do "
    "(train with router.kind: graph)",
    "routing": "routing (MHR-z) trains the new task's routing alone, and router {kind!r} has no routing to learn",
    "mhr-mu": "mhr-mu needs an average adapter the new task alone can use, and the graph router weighs every skill "
    "by a softmax (no weight is exactly 0)",
}


def supported_modes(router_kind: str) -> tuple[str, ...]:
    """The adaptation modes a run trained with ``router_kind`` supports (the router class's own
    :attr:`~taskgraph.routing.base.Router.adapt_modes`; empty for an unknown kind)."""
    return ROUTERS.get(router_kind).obj.adapt_modes if router_kind in ROUTERS else ()


def check_mode(router_kind: str, mode: str) -> None:
    """ModelError unless ``mode`` is a mode and ``router_kind`` supports it, naming what it supports."""
    if mode not in ADAPT_MODES:
        raise ModelError(f"unknown adaptation mode {mode!r}; choose from {list(ADAPT_MODES)}")
    modes = supported_modes(router_kind)
    if mode not in modes:
        why = _WHY.get(mode, "it is not implemented for this router").format(kind=router_kind)
        raise ModelError(
            f"{opt('mode')} {mode} is not supported for a run trained with router {router_kind!r}: {why}. "
            f"Router {router_kind!r} supports {list(modes)}"
        )


def plan_for(router_kind: str, mode: str) -> AdaptationPlan:
    """The router class's :meth:`~taskgraph.routing.base.Router.adaptation_plan` for a supported pair."""
    check_mode(router_kind, mode)
    return ROUTERS.get(router_kind).obj.adaptation_plan(mode)


# ----------------------------------------------------------------------------- trainable entries
@dataclass
class Trainable:
    """One trained parameter and the entries of it that phase 1 may change.

    Args:
        name: its name in ``model.named_parameters()``.
        param: the parameter.
        mask: bool, broadcastable to ``param``; None for every entry.
        group: the optimizer group (``"router"`` or ``"adapters"``), keyed like ``training.lr``.
    """

    name: str
    param: nn.Parameter
    mask: Tensor | None
    group: str

    def count(self) -> int:
        """How many entries are trained."""
        if self.mask is None:
            return self.param.numel()
        return int(self.mask.expand_as(self.param).sum())

    def hook(self) -> torch.utils.hooks.RemovableHandle | None:
        """Zero the gradient outside the mask (no hook when every entry is trained)."""
        if self.mask is None:
            return None
        mask = self.mask
        return self.param.register_hook(lambda grad: torch.where(mask, grad, torch.zeros_like(grad)))

    def __repr__(self) -> str:
        return f"Trainable({self.name}, {self.count():,} of {self.param.numel():,}, group={self.group})"


def trainable_entries(model: TaskGraphModel, plan: AdaptationPlan, task: int) -> list[Trainable]:
    """What phase 1 trains for the new task ``task`` under ``plan`` (the head is not included)."""
    out: list[Trainable] = []
    if plan.routing:
        out += [Trainable(f"router.{name}", p, mask, "router") for name, p, mask in model.router.task_parameters(task)]
    for name, layer in model.adapted if plan.adapters != "none" else []:
        for key, param in (("A", layer.A), ("B", layer.B)):
            mask = None
            if plan.adapters == "new":  # the last skill of the inventory, the one added for this task
                mask = torch.zeros(1, param.shape[1], 1, 1, dtype=torch.bool, device=param.device)  # [1, K, 1, 1]
                mask[0, -1] = True
            out.append(Trainable(f"base.{name}.{key}", param, mask, "adapters"))
    return out
