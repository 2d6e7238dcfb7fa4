"""``mhr-mu``: the uniform average of every layer's skills (MHR-μ, docs/methods.md §2); no parameters.

Used to start few-shot adaptation from the average of a trained inventory ("drop routing, start
from the uniform average of the skills, fine-tune that single adapter").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Router, Routing

if TYPE_CHECKING:
    from taskgraph.spec.models import RouterSpec


@ROUTERS.register("mhr-mu")
class MHRMuRouter(Router):
    """Every task, layer and head weighs each of the K skills 1/K; gates all open.

    Shapes:
        - **input:** tasks ``[U]`` long.
        - **output:** gates ``[U, L]`` ones, weights ``[U, L, H, K]`` all ``1/K``.
    """

    def __init__(self, num_tasks: int, num_layers: int, heads: int, skills: int, spec: RouterSpec) -> None:
        super().__init__(num_tasks, num_layers, heads, skills)

    def add_task_to_learn(self, own_skill: bool = False) -> int:
        """A new task, routed uniformly like every other (nothing to learn); no skill of its own."""
        if own_skill:
            raise ModelError(
                "the mhr-mu router weighs every skill 1/K for every task, so no task can own a skill; "
                "adapt by tuning the skills (their uniform average is the new task's adapter)"
            )
        self.num_tasks += 1
        return self.num_tasks - 1

    def forward(self, tasks: Tensor) -> Routing:
        u = tasks.shape[0]
        gates = torch.ones(u, self.num_layers, device=tasks.device)  # [U, L]
        weights = torch.full(
            (u, self.num_layers, self.heads, self.skills), 1.0 / self.skills, device=tasks.device
        )  # [U, L, H, K]
        return Routing(gates, weights)
