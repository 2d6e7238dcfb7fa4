"""``graph_zero_shot``: the graph router's learned relations and how a task joins after training.

:class:`GraphZeroShot` is a base of :class:`~taskgraph.routing.graph.GraphRouter`: the relations read back
(:meth:`~GraphZeroShot.relation_weights`), relations computed from features (:meth:`~GraphZeroShot.nearest_tasks`),
a zero-shot task node added from its relations (:meth:`~GraphZeroShot.add_task_from_relations`) and the entries
an adaptation trains for one task (:meth:`~GraphZeroShot.task_parameters`). It reads the router's state, which
:class:`~taskgraph.routing.graph.GraphRouter` builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from taskgraph.errors import ModelError
from taskgraph.routing.task_features import nearest_relations

if TYPE_CHECKING:
    from taskgraph.routing.graph import GraphState
    from taskgraph.routing.relations import RelationMatrix
    from taskgraph.routing.side_features import SideFeatures
    from taskgraph.spec.router_kinds import GraphRouterParams


class GraphZeroShot:
    """The relations and zero-shot half of :class:`~taskgraph.routing.graph.GraphRouter` (which sets the state)."""

    # the router's state these methods read and grow (set by GraphRouter.__init__ / bind_base)
    params: GraphRouterParams
    relations: RelationMatrix
    side: SideFeatures | None
    task_embedding: nn.Parameter
    description: Tensor | None  # [T, DESCRIPTION_DIM] hashed description words, or None
    num_tasks: int
    _state: GraphState | None

    def task_features(self) -> Tensor:
        """The task nodes' input features ``[T, d]``, which
        :meth:`~taskgraph.routing.graph.GraphRouter.task_features` gives."""
        raise NotImplementedError

    @torch.no_grad()
    def relation_weights(self) -> tuple[Tensor, Tensor]:
        """The learned relations: ``(index [2, E] task-id pairs i < j, weight [E] in (0, 1))``, detached."""
        index, r = self.relations.weights()
        return index.detach().clone(), r.detach().clone()

    @torch.no_grad()
    def nearest_tasks(self, side: dict[str, Tensor], k: int) -> dict[int, float]:
        """Relations computed from features: the ``k`` trained tasks whose standardised description / examples
        blocks are closest (cosine) to a new task's raw ``side`` blocks, ``{id: cosine > 0}``."""
        kinds = [kind for kind in ("description", "examples") if kind in side]
        if self.side is None or not kinds:
            raise ModelError(
                "relations computed from features need a description or examples block: router.features has "
                f"{self.params.features}; give the new task's relations"
            )
        table, row = self.side.compare(side, kinds)  # [T, F'], [F']
        return nearest_relations(table, row, k)

    @torch.no_grad()
    def add_task_from_relations(self, relate: dict[int, float], side: dict[str, Tensor] | None = None) -> int:
        """Add a zero-shot task related to existing tasks ``{id: weight}``; returns its id.

        Without side features its input feature is ``Σ_j w_j x_j / Σ_j w_j`` over the given neighbours; with them
        (``router.features``) it is the projection of its own side blocks ``side`` (``{kind: raw row}``: what
        :func:`taskgraph.model.task_features.embed_sequences` gives; a block not given is the trained tasks'
        mean, the relations block its neighbours' mean) and a zero free residual. It receives messages from its
        neighbours only, and no existing task's routing changes (up to float rounding). Build a new optimizer
        afterwards if training goes on (parameters are replaced).
        """
        if side and self.side is None:
            raise ModelError(
                f"side features {sorted(side)} given, but router.features is {self.params.features}: this router "
                "routes a new task from its relations alone"
            )
        weights = {int(t): float(w) for t, w in relate.items()}
        bad = {t: w for t, w in weights.items() if not 0 <= t < self.num_tasks or not 0.0 <= w <= 1.0}
        if not weights or sum(weights.values()) <= 0 or bad:
            raise ModelError(
                f"add_task_from_relations: relate must map existing task ids (0..{self.num_tasks - 1}) to weights in "
                f"[0, 1], at least one above 0; got {relate}"
            )
        ids = torch.tensor(list(weights), device=self.task_embedding.device)  # [n]
        w = torch.tensor(list(weights.values()), device=ids.device, dtype=self.task_embedding.dtype)  # [n]
        if self.side is None:
            row = (w[:, None] * self.task_features().index_select(0, ids)).sum(0) / w.sum()  # [d]
        else:
            row = torch.zeros_like(self.task_embedding[0])  # [d]: no residual; the side blocks route it
            self.side.append(side or {}, weights)
        grad = self.task_embedding.requires_grad
        self.task_embedding = nn.Parameter(torch.cat([self.task_embedding.detach(), row[None]]), requires_grad=grad)
        if self.description is not None:
            self.description = torch.cat([self.description, self.description.new_zeros(1, self.description.shape[1])])
        new = self.relations.add_task(weights)
        self.num_tasks += 1
        self._state = None
        return new

    def task_parameters(self, task: int) -> list[tuple[str, nn.Parameter, Tensor]]:
        """The task's node embedding row and, when relations are learned, its relation slots.

        For a task added after training (:meth:`add_task_from_relations`) these reach no trained task's routing:
        its relations carry messages into it only (a guest added later and related to it does see it).
        """
        rows = torch.zeros(self.task_embedding.shape[0], 1, dtype=torch.bool, device=self.task_embedding.device)
        rows[task] = True  # [T, 1]
        out = [("task_embedding", self.task_embedding, rows)]
        theta = self.relations.theta
        if theta.requires_grad:
            out.append(("relations.theta", theta, (self.relations.index == task).any(0)))  # [E_cap]
        return out
