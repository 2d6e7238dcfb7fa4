r"""``graph``: the graph-prior router — learned relations, a heterogeneous GNN, per-layer gates and weights.

Our design (docs/methods.md §1 gives the paper's abstract only; the equations are ours). Per step:

1. Relations ``R_ij = σ(θ_ij)`` on a sparse candidate edge set (:class:`RelationMatrix`).
2. Node features: a learned embedding per task (plus a projection of hashed description words,
   :func:`~taskgraph.routing.gnn.description_features`), per adapter (skill k of layer l), and per
   layer (plus the fixed sinusoidal encoding of its index).
3. The GNN (:class:`~taskgraph.routing.gnn.GraphEncoder`) runs **once** over the whole graph, R
   entering as the edge weight of the task–task convolution: ``h_t``, ``h_{l,k}``, ``h_l``. One
   message-passing round by default: with every pair a candidate at the neutral R = 0.5, more rounds
   over-smooth the task embeddings towards their mean.
4. Read-out, for task t, layer l, head h (τ = ``router.temperature``, s = :attr:`GraphRouter.cosine_scale`, 5):

   .. math::
       w_{t,l,h,:} = \mathrm{softmax}_k\bigl(s \cos(q_h(h_t) - \bar q_h,\; k_h(h_{l,k}) - \bar k_{h,l}) / \tau\bigr),
       \qquad g_{t,l} = \sigma\bigl(\mathrm{MLP}([h_t, h_l]) / \tau\bigr)

   with ``q̄`` the mean query over the trained tasks and ``k̄_l`` the mean key of layer l's skills; the gate is
   straight-through, forward ``1[g ≥ θ]`` (θ = ``router.gate_threshold`` when a compute budget is set, else 0:
   without a budget every gate stays open — see ``__init__``). Why centred, why a cosine, and the gate's rule:
   :mod:`taskgraph.routing.graph_readout`. The gate MLP's output bias starts at ``τ·logit(gate_init)``: all open.
5. Loss terms (:meth:`GraphRouter.regularizer`) and the warm start of the task features: the math in
   :mod:`taskgraph.routing.graph_priors` — relation density and declared pairs, compute budget, smoothness (how R
   learns relations with none declared), contrast and ``warm_start: relations``.

Cost per training step: the GNN over all T tasks, once. While all pairs are candidates (T ≤ 64)
every task is read out and the regularizer sees all of them; beyond that, only the batch's tasks
and their candidate neighbours are read out and the regularizer sees the pairs touching the batch
(``O(U·k)``; :meth:`GraphRouter._encode_batch`). Its time per step against T: ``taskgraph bench scale``.

Zero-shot (:meth:`GraphRouter.add_task_from_relations`, in :mod:`taskgraph.routing.graph_zero_shot`): a new task
node gets the R-weighted mean of its neighbours' input features and messages from them only; the other tasks'
routing is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.errors import ModelError
from taskgraph.graph.vocab import ADAPTER, LAYER, TASK, TASK_RELATES_TASK
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import AdaptationPlan, Router, Routing, router_params
from taskgraph.routing.gnn import GraphEncoder, description_features
from taskgraph.routing.graph_priors import (
    budget_penalty,
    contrast_penalty,
    declared_matrix,
    smoothness_penalty,
    spectral_task_init,
)
from taskgraph.routing.graph_readout import COSINE_SCALE, routing_weights, straight_through_gate
from taskgraph.routing.graph_zero_shot import GraphZeroShot
from taskgraph.routing.relations import RelationMatrix
from taskgraph.routing.side_features import SideFeatures
from taskgraph.routing.structure import StructureGraph, layer_positions
from taskgraph.routing.task_features import side_kinds
from taskgraph.routing.version_key import same_key, version_key
from taskgraph.spec.router_kinds import GraphRouterParams

if TYPE_CHECKING:
    from taskgraph.spec.models import RelationsSpec, RouterSpec, Spec

DESCRIPTION_DIM = 256  # buckets of the hashed description features


@dataclass
class GraphState:
    """One run of encoder and read-out, kept from the training forward for the regularizer."""

    weights: Tensor  # [T, L, H, K]
    gates: Tensor  # [T, L] soft
    relation_index: Tensor  # [2, E] pairs i < j
    relation_weight: Tensor  # [E]


# ----------------------------------------------------------------------------- the router
@ROUTERS.register("graph", params=GraphRouterParams)
class GraphRouter(GraphZeroShot, Router):
    """The graph-prior router (the math is in the module docstring).

    Args:
        num_tasks: T, every task (trained and zero-shot).
        num_layers: L.
        heads: H.
        skills: K.
        spec: the router spec: τ, θ and the :class:`GraphRouterParams` keys.
        relations: the spec's relations section (declared pairs, λ_R, ρ, λ_p, top_k, refresh_every,
            learn). (default: none declared, the section's defaults)
        task_names: to resolve declared relations and ``zero_shot``. (default: ``task0 ..``)
        descriptions: a description (or None) per task. (default: none)

    Shapes:
        - **input:** tasks ``[U]`` long.
        - **output:** gates ``[U, L]`` in {0, 1}, weights ``[U, L, H, K]`` (rows sum to 1).
    """

    adapt_modes: ClassVar[tuple[str, ...]] = ("full", "routing", "zero-shot")
    has_gates: ClassVar[bool] = True
    cosine_scale: ClassVar[float] = COSINE_SCALE  # s of the read-out: routing logits lie in [−s/τ, s/τ]

    @classmethod
    def adaptation_plan(cls, mode: str) -> AdaptationPlan:
        """A new node routed from its relations: ``zero-shot`` trains nothing, ``routing`` its node, ``full`` its
        node and every skill. (``mhr-mu`` needs an average adapter the new task alone can use, and the graph
        router weighs every skill by a softmax: no weight is exactly 0.)"""
        cls.check_adapt_mode(mode)
        if mode == "zero-shot":
            return AdaptationPlan("relations", False, "lora", routing=False, adapters="none", router_train=False)
        return AdaptationPlan(
            "relations", False, "lora", routing=True, adapters="all" if mode == "full" else "none", router_train=False
        )

    def __init__(
        self,
        num_tasks: int,
        num_layers: int,
        heads: int,
        skills: int,
        spec: RouterSpec,
        relations: RelationsSpec | None = None,
        task_names: Sequence[str] | None = None,
        descriptions: Sequence[str | None] | None = None,
    ) -> None:
        from taskgraph.spec.models import RelationsSpec

        params = _params(spec)
        rel = relations if relations is not None else RelationsSpec()
        names = list(task_names) if task_names is not None else [f"task{t}" for t in range(num_tasks)]
        texts = list(descriptions) if descriptions is not None else [None] * num_tasks
        if len(names) != num_tasks or len(texts) != num_tasks:
            raise ModelError(f"graph router: {num_tasks} tasks but {len(names)} names and {len(texts)} descriptions")
        trained = num_tasks - len(_guests(names, params.zero_shot))
        super().__init__(trained, num_layers, heads, skills)
        # Gates close only under a compute budget (λ_g > 0). With none, nothing asks a gate to close, yet the
        # straight-through gradient of still-noisy adapters can shut a whole layer's gates early; a closed gate
        # stops its adapter's gradient, so it never reopens. Without a budget every gate therefore stays open.
        threshold = float(spec.gate_threshold) if params.budget > 0 else 0.0
        self.params, self.temperature, self.threshold = params, float(spec.temperature), threshold
        self.lam_relations, self.lam_pull = float(rel.regularization), float(rel.pull)
        if params.gate_init < self.threshold:
            raise ModelError(
                f"router.gate_init={params.gate_init} is below router.gate_threshold={self.threshold}: "
                "every gate would start closed; choose gate_init above the threshold"
            )
        d = params.gnn.hidden
        self.key_dim = max(8, d // heads)
        # the free per-task vector: randn with no side feature (as ever); with one, a residual that starts at zero
        self._side_kinds = side_kinds(params.features)
        free = torch.randn(trained, d) if not self._side_kinds else torch.zeros(trained, d)  # [T, d]
        self.task_embedding = nn.Parameter(free, requires_grad="free" in params.features)
        self.side: SideFeatures | None = None  # built by bind_base, which knows the base's width
        use_text = params.descriptions and any(texts[:trained]) and "description" not in params.features
        self.register_buffer(
            "description", description_features(texts[:trained], DESCRIPTION_DIM) if use_text else None
        )
        self.describe = nn.Linear(DESCRIPTION_DIM, d, bias=False) if use_text else None
        self.adapter_embedding = nn.Parameter(torch.randn(num_layers * skills, d))  # [L·K, d]
        self.layer_embedding = nn.Parameter(torch.randn(num_layers, d))  # [L, d]
        self.register_buffer("layer_position", layer_positions(num_layers, d), persistent=False)  # [L, d]
        self.structure = StructureGraph(num_layers, skills)  # the adapter / layer edges (independent of the tasks)
        self.encoder = GraphEncoder(d, params.gnn.layers, params.gnn.conv)
        self.query = nn.Linear(d, heads * self.key_dim)
        self.key = nn.Linear(d, heads * self.key_dim)
        g = max(8, d // 4)  # the gate MLP's width: its hidden layer is [T, L, g], the router's largest tensor
        self.gate_task, self.gate_layer = nn.Linear(d, g), nn.Linear(d, g, bias=False)
        self.gate_out = nn.Linear(g, 1)
        with torch.no_grad():  # every gate starts open at g = gate_init, the same for all tasks
            self.gate_out.weight.zero_()
            self.gate_out.bias.fill_(self.temperature * math.log(params.gate_init / (1 - params.gate_init)))
        ids = {n: i for i, n in enumerate(names)}
        unknown = sorted({n for a, b, _ in rel.declared for n in (a, b) if n not in ids})
        if unknown:
            raise ModelError(f"relations.declared names unknown tasks {unknown}; tasks are {names}")
        declared = [(ids[a], ids[b], w) for a, b, w in rel.declared]
        self._declared = declared
        if params.warm_start == "relations":
            with torch.no_grad():
                prior = declared_matrix(trained, declared)  # [T, T]
                self.task_embedding.copy_(spectral_task_init(prior, d, params.warm_start_noise))
        self.relations = RelationMatrix(
            trained,
            [(a, b, w) for a, b, w in declared if a < trained and b < trained],
            learn=rel.learn,
            density=rel.density,
            top_k=rel.top_k,
            refresh_every=rel.refresh_every,
            dense_limit=params.dense_limit,
            embeddings=self.task_features().detach() if trained > params.dense_limit else None,
        )
        self._state: GraphState | None = None
        self._cache: tuple[tuple[object, ...], GraphState] | None = None  # see _cached_encoding
        for g in range(trained, num_tasks):  # replay the zero-shot additions, in order
            self.add_task_from_relations(
                {(b if a == g else a): w for a, b, w in declared if g in (a, b) and min(a, b) < g}
            )

    @classmethod
    def from_spec(cls, spec: Spec, num_layers: int, skills: int) -> GraphRouter:
        return cls(
            len(spec.tasks),
            num_layers,
            spec.adapters.splits,
            skills,
            spec.router,
            relations=spec.relations,
            task_names=spec.task_names,
            descriptions=[t.description for t in spec.tasks],
        )

    # ---- encoding ---------------------------------------------------------------------------
    @property
    def side_kinds(self) -> list[str]:
        return list(self._side_kinds)

    def bind_base(self, width: int) -> None:
        """With side features (``router.features``): build their blocks for a base of hidden size ``width``."""
        if self._side_kinds and self.side is None:
            p = self.params
            self.side = SideFeatures(
                p.features,
                self.num_tasks,
                self.relations.num_trained,
                width,
                p.relation_dims,
                p.gnn.hidden,
                self._declared,
            ).to(self.task_embedding.device)

    def task_features(self) -> Tensor:
        """The task nodes' input features ``[T, d]``: the free embedding (+ projected hashed description) (+ the
        projected side features)."""
        x = self.task_embedding  # [T, d]
        if self.describe is not None:
            x = x + self.describe(self.description)  # [T, d]
        if self.side is not None:
            x = x + self.side()  # [T, d]
        return x

    def embed(self) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Run the GNN once: ``({task, adapter, layer} embeddings, relation index [2, E], R [E])``."""
        index, r = self.relations.weights()  # [2, E], [E]
        edges = {TASK_RELATES_TASK: None, **self.structure.edge_index()}
        edges[TASK_RELATES_TASK], r_directed = self.relations.directed(index, r)  # [2, E'], [E']
        if not self.params.task_messages:  # the ablation: each task's features through the same layers, alone
            edges[TASK_RELATES_TASK], r_directed = edges[TASK_RELATES_TASK][:, :0], r_directed[:0]
        x = {
            TASK: self.task_features(),
            ADAPTER: self.adapter_embedding,
            LAYER: self.layer_embedding + self.layer_position,
        }
        return self.encoder(x, edges, r_directed, self.structure.operator()), index, r

    def encode(self, rows: Tensor | None = None) -> GraphState:
        """Encoder + read-out for every task (``rows`` None) or for the tasks ``rows [U]`` only."""
        h, index, r = self.embed()
        L, K, H = self.num_layers, self.skills, self.heads
        query = self.query(h[TASK]).view(-1, H, self.key_dim)  # [T, H, d_k]
        trained = query if self.relations.num_trained == len(query) else query[: self.relations.num_trained]
        query_mean = trained.mean(0, keepdim=True)  # [1, H, d_k]
        h_task = h[TASK] if rows is None else h[TASK].index_select(0, rows)  # [U, d]
        query = query if rows is None else query.index_select(0, rows)  # [U, H, d_k]
        keys = self.key(h[ADAPTER]).view(L, K, H, self.key_dim)  # [L, K, H, d_k]
        weights = routing_weights(query, query_mean, keys, self.temperature, self.cosine_scale)  # [U, L, H, K]
        hidden = F.gelu(self.gate_task(h_task)[:, None] + self.gate_layer(h[LAYER])[None])  # [U, L, g]
        soft = torch.sigmoid(self.gate_out(hidden).squeeze(-1) / self.temperature)  # [U, L]
        return GraphState(weights, soft, index, r)

    def forward(self, tasks: Tensor) -> Routing:  # tasks: [U] distinct ids
        if self.training:
            if self.relations.refresh_due():
                with torch.no_grad():
                    self.relations.refresh(self.embed()[0][TASK])
            self.relations.tick()
            if self.relations.dense:  # few tasks: read out every task, the regularizer sees them all
                self._state = state = self.encode()
                weights, soft = state.weights.index_select(0, tasks), state.gates.index_select(0, tasks)
            else:
                self._state, rows = self._encode_batch(tasks)
                weights, soft = self._state.weights[rows], self._state.gates[rows]
        elif self._frozen():  # inference or a frozen router: the GNN's output only changes with its inputs
            state = self._cached_encoding()
            weights, soft = state.weights.index_select(0, tasks), state.gates.index_select(0, tasks)
        else:
            state = self.encode(tasks)
            weights, soft = state.weights, state.gates
        return Routing(straight_through_gate(soft, self.threshold), weights)  # [U, L], [U, L, H, K]

    def _frozen(self) -> bool:
        """No gradient can reach the router: no grad mode, or none of its parameters requires one."""
        return not torch.is_grad_enabled() or not any(p.requires_grad for p in self.parameters())

    def _cached_encoding(self) -> GraphState:
        """Encoder + read-out of every task, kept while nothing it reads changed: every parameter and buffer
        (the same tensors at the same versions — an optimizer step, a load or a task added changes them), τ
        and θ. Inference with the graph router then runs its GNN once, not once per batch."""
        key = version_key(
            (torch.is_inference_mode_enabled(), self.temperature, self.threshold, self.num_tasks),
            (*self.parameters(), *self.buffers()),
        )
        cached = self._cache
        if cached is None or not same_key(cached[0], key):
            with torch.no_grad():
                cached = self._cache = (key, self.encode())
        return cached[1]

    def _encode_batch(self, tasks: Tensor) -> tuple[GraphState, Tensor]:
        """Sparse mode: the GNN over every task, the read-out for the batch's tasks and their candidate
        neighbours only, and the relation pairs touching the batch (indices remapped to those rows).

        The regularizer then sees an ``O(U·k)`` sample of tasks and pairs per step — under uniform task
        sampling every pair is seen in proportion to how often its tasks are drawn — instead of all T.
        Returns the state and the positions of ``tasks`` in its rows.
        """
        pairs = self.relations.index[:, self.relations.active]  # [2, E]
        rows = torch.unique(torch.cat([tasks, pairs[:, torch.isin(pairs, tasks).any(0)].reshape(-1)]))  # [N]
        state = self.encode(rows)
        touch = torch.isin(state.relation_index, tasks).any(0)  # [E] pairs with an end in the batch
        index = torch.searchsorted(rows, state.relation_index[:, touch])  # [2, E_b] positions in rows
        return GraphState(state.weights, state.gates, index, state.relation_weight[touch]), torch.searchsorted(
            rows, tasks
        )

    def regularizer(self) -> Tensor:
        """Relations + compute budget + smoothness + contrast, on the last training forward's state (else a fresh one)."""
        state, self._state = (self._state or self.encode()), None
        p = self.params
        loss = self.relations.regularizer(self.lam_relations, self.lam_pull)
        if p.budget > 0:
            loss = loss + budget_penalty(state.gates, p.budget_target, p.budget)
        if p.smoothness > 0:
            loss = loss + smoothness_penalty(state.weights, state.relation_index, state.relation_weight, p.smoothness)
        if p.contrast > 0:
            loss = loss + contrast_penalty(
                state.weights, state.relation_index, state.relation_weight, p.contrast, p.contrast_margin
            )
        if self._side_kinds and p.free_l2 > 0 and self.task_embedding.requires_grad:
            free = self.task_embedding[: self.relations.num_trained]  # [T, d]
            loss = loss + p.free_l2 * free.pow(2).sum(1).mean()
        return loss

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"{super().extra_repr()}, trained={self.relations.num_trained}, conv={p.gnn.conv}, "
            f"gnn_layers={p.gnn.layers}, hidden={p.gnn.hidden}, temperature={self.temperature:g}, "
            f"gate_threshold={self.threshold:g}, smoothness={p.smoothness:g}, "
            f"budget={p.budget:g}@{p.budget_target:g}"
        )


def _params(spec: RouterSpec) -> GraphRouterParams:
    return router_params(spec, GraphRouterParams)


def _guests(names: list[str], zero_shot: list[str]) -> list[str]:
    """Zero-shot tasks must be the last tasks, in the order they were added."""
    if zero_shot and names[len(names) - len(zero_shot) :] != list(zero_shot):
        raise ModelError(
            f"router.zero_shot {zero_shot} must name the last tasks of the spec, in order; the tasks are {names}"
        )
    return list(zero_shot)
