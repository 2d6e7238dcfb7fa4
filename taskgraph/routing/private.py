"""The ``private`` baseline: one LoRA per task (K = T, identity routing: task t uses skill t)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import AdaptationPlan, Router, Routing

if TYPE_CHECKING:
    from taskgraph.spec.models import RouterSpec


@ROUTERS.register("private")
class PrivateRouter(Router):
    """Task t uses skill t of every layer and head; no parameters.

    The routing sets ``choice`` so the adapter layers index-select the task's skill rather than
    mixing all T of them (cost independent of T). The one-hot ``weights`` are given too, for
    folding and metrics.

    Shapes:
        - **input:** tasks ``[U]`` long.
        - **output:** gates ``[U, L]`` ones, weights ``[U, L, H, T]`` one-hot, choice ``[U, L, H]``.
    """

    adapt_modes: ClassVar[tuple[str, ...]] = ("full", "mhr-mu")

    @classmethod
    def adaptation_plan(cls, mode: str) -> AdaptationPlan:
        """The new task gets its own LoRA (the only adapter it uses), which is what is trained: from a fresh
        LoRA (``full``) or from the average of the private LoRAs (``mhr-mu``)."""
        cls.check_adapt_mode(mode)
        init = "average" if mode == "mhr-mu" else "lora"
        return AdaptationPlan("learned", False, init, routing=False, adapters="new", router_train=True)

    def __init__(self, num_tasks: int, num_layers: int, heads: int, skills: int, spec: RouterSpec) -> None:
        if skills != num_tasks:
            raise ModelError(
                f"the private router has one skill per task (skills={num_tasks}), got "
                f"skills={skills}; build it with PrivateRouter.inventory_size(...)"
            )
        super().__init__(num_tasks, num_layers, heads, skills)

    @classmethod
    def inventory_size(cls, skills: int, num_tasks: int) -> int:
        return num_tasks

    def add_task_to_learn(self, own_skill: bool = False) -> int:
        """A new task with a skill of its own (K = T grows by one; the model grows the inventories)."""
        self.num_tasks += 1
        self.skills += 1
        return self.num_tasks - 1

    def forward(self, tasks: Tensor) -> Routing:
        u, shape = tasks.shape[0], (tasks.shape[0], self.num_layers, self.heads)
        gates = torch.ones(u, self.num_layers, device=tasks.device)  # [U, L]
        choice = tasks[:, None, None].expand(shape).contiguous()  # [U, L, H]
        weights = torch.nn.functional.one_hot(choice, self.num_tasks).to(gates.dtype)  # [U, L, H, T]
        return Routing(gates, weights, choice)
