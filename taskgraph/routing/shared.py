"""The ``shared`` baseline: one LoRA for every task (K = 1, all weights one, all gates open)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Router, Routing

if TYPE_CHECKING:
    from taskgraph.spec.models import RouterSpec


@ROUTERS.register("shared")
class SharedRouter(Router):
    """Every task uses the single skill of every layer (docs/methods.md §2, "shared" baseline); no parameters.

    Shapes:
        - **input:** tasks ``[U]`` long.
        - **output:** gates ``[U, L]`` ones, weights ``[U, L, H, 1]`` ones.
    """

    def __init__(self, num_tasks: int, num_layers: int, heads: int, skills: int, spec: RouterSpec) -> None:
        if skills != 1:
            raise ModelError(
                f"the shared router has one skill per layer, got skills={skills}; "
                f"build it with SharedRouter.inventory_size(...) == 1"
            )
        super().__init__(num_tasks, num_layers, heads, skills)

    @classmethod
    def inventory_size(cls, skills: int, num_tasks: int) -> int:
        return 1

    def add_task_to_learn(self, own_skill: bool = False) -> int:
        """A new task using the one shared skill (nothing to learn); no skill of its own."""
        if own_skill:
            raise ModelError(
                "the shared router has one skill that every task uses, so no task can own a skill; "
                "adapt by tuning the shared skill"
            )
        self.num_tasks += 1
        return self.num_tasks - 1

    def forward(self, tasks: Tensor) -> Routing:
        u = tasks.shape[0]
        gates = torch.ones(u, self.num_layers, device=tasks.device)  # [U, L]
        weights = torch.ones(u, self.num_layers, self.heads, 1, device=tasks.device)  # [U, L, H, 1]
        return Routing(gates, weights)
