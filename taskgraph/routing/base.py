"""What every router returns, and the interface every router implements.

A router turns task ids into, per adapted layer, a **gate** (is this layer's adapter on for the
task?) and **mixture weights** over the layer's K skills in each of H heads. Routers are
registered by kind in :data:`taskgraph.registry.ROUTERS`; a new router is one new file.

A router is asked only for the distinct tasks of the current batch (``U ≤ B``), so the cost of
routing does not grow with the number of tasks T (the graph router runs its GNN over the whole
graph once per step and then selects the rows it was asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch
from pydantic import BaseModel, ValidationError
from torch import Tensor, nn

from taskgraph.errors import ModelError, validation_problems

if TYPE_CHECKING:
    from taskgraph.spec.models import RouterSpec, Spec


P = TypeVar("P", bound=BaseModel)


def router_params(spec: RouterSpec, model: type[P]) -> P:
    """A router spec's own keys as the kind's parameter model ``model`` (already validated when the spec
    came through :class:`~taskgraph.spec.Spec`; validated here for a bare ``RouterSpec``).

    Raises:
        ModelError: naming the first bad key, e.g. ``router.share_layers: Input should be a valid boolean``.
    """
    if isinstance(spec.params, model):
        return spec.params
    try:
        return model.model_validate(spec.own_fields())
    except ValidationError as exc:
        raise ModelError(validation_problems(exc, prefix="router.", limit=1)) from None


@dataclass
class Routing:
    """Gates and mixture weights for a set of tasks.

    Args:
        gates: ``[U, L]`` in [0, 1]; the value multiplying each layer's adapter output. Static
            routers give all ones; the graph router gives a straight-through hard gate
            (forward value exactly 0 or 1).
        weights: ``[U, L, H, K]``; non-negative, each ``[h, :]`` row sums to 1.
        choice: ``[U, L, H]`` long, or None. Set when every weight row is one-hot (``private``):
            the adapter layers then index-select skill ``choice`` instead of mixing.
    """

    gates: Tensor
    weights: Tensor
    choice: Tensor | None = None

    def for_tasks(self, rows: Tensor) -> "Routing":
        """The routing of rows ``rows`` ([N] long indices into the U tasks) — e.g. per example."""
        choice = None if self.choice is None else self.choice.index_select(0, rows)
        return Routing(self.gates.index_select(0, rows), self.weights.index_select(0, rows), choice)

    def to(self, device: torch.device | str) -> "Routing":
        choice = None if self.choice is None else self.choice.to(device)
        return Routing(self.gates.to(device), self.weights.to(device), choice)

    @property
    def num_tasks(self) -> int:
        return self.weights.shape[0]


class Router(nn.Module):
    """Base of all routers.

    Args:
        num_tasks: T, the number of task rows the router holds.
        num_layers: L, the number of adapted linear modules.
        heads: H, the number of routing heads (MHR); 1 for Poly.
        skills: K, the number of skills in every layer's inventory.

    Subclasses implement :meth:`forward` and may override :meth:`regularizer`, :meth:`add_task`
    (zero-shot, from relations) and :meth:`add_learned_task` (few-shot, a learned routing row).
    Parameters of a router go into the optimizer's ``router`` group.
    """

    def __init__(self, num_tasks: int, num_layers: int, heads: int, skills: int) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.num_layers = num_layers
        self.heads = heads
        self.skills = skills

    @classmethod
    def from_spec(cls, spec: Spec, num_layers: int, skills: int) -> "Router":
        """Build this router for a model of ``num_layers`` adapted layers with ``skills`` skills each.

        Static routers need only the counts; the graph router overrides this to also read the
        relations, task names and descriptions.
        """
        return cls(len(spec.tasks), num_layers, spec.adapters.heads, skills, spec.router)  # type: ignore[call-arg]

    @classmethod
    def inventory_size(cls, skills: int, num_tasks: int) -> int:
        """K, the number of skills every layer holds under this router (``shared``: 1, ``private``: T)."""
        return skills

    def forward(self, tasks: Tensor) -> Routing:  # tasks: [U] long, distinct task ids
        raise NotImplementedError

    def add_task(self, relate: dict[int, float]) -> int:
        """Route a task unseen in training from its relations ``{task id: weight}``; returns its id.

        Only a router that routes through task relations can do this (the graph router).
        """
        raise ModelError(
            f"zero-shot routing of a new task needs the graph router (router.kind: graph); "
            f"{type(self).__name__} keeps one learned routing row per trained task and cannot route a task "
            f"from its relations. Train with router.kind: graph, or adapt this model few-shot instead"
        )

    def add_learned_task(self, own_skill: bool = False) -> int:
        """Add a task whose routing is learned from a few of its examples (few-shot); returns its id.

        Static routers give it a new routing row (``poly`` / ``mhr``: a logits row to train, initialised
        as in training; ``mhr-mu`` / ``shared``: nothing to learn). ``own_skill=True`` also gives the
        task one new skill per layer that only it uses (:attr:`skills` grows by one; the model grows
        every inventory to match): MHR-μ's "average adapter", or ``private``'s one LoRA per task, which
        it always does. Routers that route from relations (``graph``) take new tasks by :meth:`add_task`.
        """
        raise ModelError(
            f"{type(self).__name__} cannot add a task to learn its routing from examples; the graph router "
            f"routes a new task from its relations: use add_task with relations to existing tasks"
        )

    def task_parameters(self, task: int) -> list[tuple[str, nn.Parameter, Tensor]]:
        """The parameters that hold task ``task``'s own routing, each with a bool mask of its entries.

        ``[(name inside the router, parameter, mask broadcastable to it)]``; training only the masked
        entries changes the routing of this task alone (for a task added after training). Empty for
        routers with no routing to learn (``shared``, ``private``, ``mhr-mu``).
        """
        return []

    def regularizer(self) -> Tensor:
        """Extra loss terms of this router (relation priors, compute budget); zero by default."""
        return torch.zeros((), device=self._device())

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def extra_repr(self) -> str:
        return f"tasks={self.num_tasks}, layers={self.num_layers}, heads={self.heads}, skills={self.skills}"
