"""The adaptation modes: which (router, mode) pairs exist, how the new task is added, what is trained.

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
from typing import Literal

import torch
from torch import Tensor, nn

from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel

ADAPT_MODES = ("full", "routing", "mhr-mu", "zero-shot")

SUPPORTED: dict[str, tuple[str, ...]] = {
    "poly": ("full", "routing", "mhr-mu"),
    "mhr": ("full", "routing", "mhr-mu"),
    "graph": ("full", "routing", "zero-shot"),
    "private": ("full", "mhr-mu"),
    "shared": ("full", "mhr-mu"),
    "mhr-mu": ("full", "mhr-mu"),
}

_WHY = {
    "zero-shot": "zero-shot routes a new task from its relations, which only the graph router can do "
                 "(train with router.kind: graph)",
    "routing": "routing (MHR-z) trains the new task's routing alone, and router {kind!r} has no routing to learn",
    "mhr-mu": "mhr-mu needs an average adapter the new task alone can use, and the graph router weighs every skill "
              "by a softmax (no weight is exactly 0)",
}


def supported_modes(router_kind: str) -> tuple[str, ...]:
    """The adaptation modes a run trained with ``router_kind`` supports (empty for an unknown kind)."""
    return SUPPORTED.get(router_kind, ())


def check_mode(router_kind: str, mode: str) -> None:
    """ModelError unless ``mode`` is a mode and ``router_kind`` supports it, naming what it supports."""
    if mode not in ADAPT_MODES:
        raise ModelError(f"unknown adaptation mode {mode!r}; choose from {list(ADAPT_MODES)}")
    modes = supported_modes(router_kind)
    if mode not in modes:
        why = _WHY.get(mode, "it is not implemented for this router").format(kind=router_kind)
        raise ModelError(f"--mode {mode} is not supported for a run trained with router {router_kind!r}: {why}. "
                         f"Router {router_kind!r} supports {list(modes)}")


@dataclass(frozen=True)
class Plan:
    """How a (router, mode) pair adapts.

    Args:
        add: ``"relations"`` (:meth:`TaskGraphModel.add_task`, the graph router) or ``"learned"``
            (:meth:`TaskGraphModel.add_learned_task`).
        own_skill: the new task gets a skill of its own (``poly`` / ``mhr`` in mhr-mu mode).
        skill_init: how a new skill starts: ``"lora"`` or ``"average"``.
        routing: the new task's routing row / node is trained.
        adapters: ``"all"`` skills, only the ``"new"`` skill, or ``"none"``.
        router_train: the router runs in training mode during phase 1 (``poly`` / ``mhr``: relaxed
            Bernoulli routing, as in training). The graph router runs in eval mode: its training
            forward advances the refresh schedule of the candidate relations, which other tasks read.
    """

    add: Literal["relations", "learned"]
    own_skill: bool
    skill_init: Literal["lora", "average"]
    routing: bool
    adapters: Literal["all", "new", "none"]
    router_train: bool

    @property
    def other_tasks_change(self) -> bool:
        """Whether phase 1 moves parameters the trained tasks read (only tuning shared skills does)."""
        return self.adapters == "all"


def plan_for(router_kind: str, mode: str) -> Plan:
    """The :class:`Plan` of a supported pair (see :func:`check_mode`)."""
    check_mode(router_kind, mode)
    graph, routed = router_kind == "graph", router_kind in ("poly", "mhr")
    add = "relations" if graph else "learned"
    if mode == "zero-shot":
        return Plan(add, False, "lora", routing=False, adapters="none", router_train=False)
    if mode == "routing":
        return Plan(add, False, "lora", routing=True, adapters="none", router_train=not graph)
    if mode == "full":
        adapters = "new" if router_kind == "private" else "all"
        return Plan(add, False, "lora", routing=graph or routed, adapters=adapters, router_train=not graph)
    if routed or router_kind == "private":  # mhr-mu with a skill of its own
        return Plan(add, routed, "average", routing=False, adapters="new", router_train=True)
    return Plan(add, False, "lora", routing=False, adapters="all", router_train=True)  # shared, mhr-mu: tune all


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


def trainable_entries(model: TaskGraphModel, plan: Plan, task: int) -> list[Trainable]:
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
