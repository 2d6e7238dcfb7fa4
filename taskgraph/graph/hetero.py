"""The heterogeneous PyG graph the routers' GNN runs on.

Node types (counts): ``task`` [T], ``adapter`` [L·K] (skill k of adapted layer l is node
``l·K + k``), ``layer`` [L]. Edge types (see :mod:`taskgraph.graph.vocab`):

- ``(task, relates, task)``: the relation edges, both directions, with ``edge_weight`` [E] —
  the declared weights, or learned ones passed in (they stay differentiable);
- ``(task, uses, adapter)`` and its reverse ``(adapter, used_by, task)``: every task to every adapter;
- ``(adapter, in, layer)`` and ``(layer, has, adapter)``;
- ``(adapter, next, adapter)`` and ``(adapter, prev, adapter)``: skill k of layer l to every skill of
  layer l + 1 (the possible paths).

Node stores carry ``node_id`` (an arange, to index learned embeddings) and, for layers, a
``position`` in [0, 1]; they carry no learned features, which live in the router.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from taskgraph.errors import GraphError
from taskgraph.graph.taskgraph import TaskGraph
from taskgraph.graph.vocab import (
    ADAPTER,
    ADAPTER_IN_LAYER,
    ADAPTER_NEXT_ADAPTER,
    ADAPTER_PREV_ADAPTER,
    ADAPTER_USED_BY_TASK,
    LAYER,
    LAYER_HAS_ADAPTER,
    TASK,
    TASK_RELATES_TASK,
    TASK_USES_ADAPTER,
)


def declared_edges(graph: TaskGraph) -> tuple[Tensor, Tensor]:
    """The declared relations as an undirected edge list: index [2, E] (one direction) and weight [E]."""
    ids = {name: i for i, name in enumerate(graph.tasks)}
    rel = graph.relations
    index = torch.tensor([[ids[a] for a, _, _ in rel], [ids[b] for _, b, _ in rel]], dtype=torch.long)  # [2, E]
    weight = torch.tensor([w for _, _, w in rel], dtype=torch.float32)  # [E]
    return index.reshape(2, -1), weight


def to_hetero(
    graph: TaskGraph,
    num_layers: int,
    skills: int,
    relation_index: Tensor | None = None,
    relation_weight: Tensor | None = None,
) -> HeteroData:
    """Build the :class:`HeteroData` of ``graph`` over ``num_layers`` layers of ``skills`` adapters.

    Args:
        graph: the tasks and their declared relations.
        num_layers: L, the number of adapted modules.
        skills: K, the skills in each layer's inventory.
        relation_index: [2, E] long, one direction of each undirected relation edge (default: declared).
        relation_weight: [E] weights of those edges (default: declared weights); gradients flow through.

    Shapes:
        task nodes [T], adapter nodes [L·K], layer nodes [L]; ``relates`` edges [2, 2E].
    """
    if num_layers < 1 or skills < 1:
        raise GraphError(f"to_hetero needs num_layers ≥ 1 and skills ≥ 1, got {num_layers} and {skills}")
    T = len(graph)
    if T == 0:
        raise GraphError("to_hetero: the graph has no tasks; add at least one with add_task")
    if (relation_index is None) != (relation_weight is None):
        raise GraphError("to_hetero: give relation_index and relation_weight together, or neither")
    if relation_index is None:
        relation_index, relation_weight = declared_edges(graph)
    assert relation_weight is not None
    if relation_index.shape[0] != 2 or relation_index.shape[1] != relation_weight.shape[0]:
        raise GraphError(
            f"to_hetero: relation_index must be [2, E] and relation_weight [E], got "
            f"{tuple(relation_index.shape)} and {tuple(relation_weight.shape)}"
        )
    device = relation_weight.device
    LK = num_layers * skills

    data = HeteroData()
    data[TASK].node_id = torch.arange(T, device=device)  # [T]
    data[ADAPTER].node_id = torch.arange(LK, device=device)  # [L·K]
    data[LAYER].node_id = torch.arange(num_layers, device=device)  # [L]
    data[LAYER].position = torch.linspace(0, 1, num_layers, device=device)  # [L]

    index = relation_index.to(device)
    data[TASK_RELATES_TASK].edge_index = torch.cat([index, index.flip(0)], dim=1)  # [2, 2E]
    data[TASK_RELATES_TASK].edge_weight = torch.cat([relation_weight, relation_weight])  # [2E]

    tasks = torch.arange(T, device=device).repeat_interleave(LK)  # [T·L·K]
    adapters = torch.arange(LK, device=device).repeat(T)  # [T·L·K]
    data[TASK_USES_ADAPTER].edge_index = torch.stack([tasks, adapters])  # [2, T·L·K]
    data[ADAPTER_USED_BY_TASK].edge_index = torch.stack([adapters, tasks])  # [2, T·L·K]

    owner = torch.arange(LK, device=device) // skills  # [L·K] layer of each adapter
    data[ADAPTER_IN_LAYER].edge_index = torch.stack([torch.arange(LK, device=device), owner])  # [2, L·K]
    data[LAYER_HAS_ADAPTER].edge_index = torch.stack([owner, torch.arange(LK, device=device)])  # [2, L·K]

    src_layer = torch.arange(num_layers - 1, device=device).repeat_interleave(skills * skills)  # [(L-1)·K·K]
    k_src = torch.arange(skills, device=device).repeat_interleave(skills).repeat(num_layers - 1)
    k_dst = torch.arange(skills, device=device).repeat(skills * (num_layers - 1))
    src = src_layer * skills + k_src
    dst = (src_layer + 1) * skills + k_dst
    data[ADAPTER_NEXT_ADAPTER].edge_index = torch.stack([src, dst])  # [2, (L-1)·K·K]
    data[ADAPTER_PREV_ADAPTER].edge_index = torch.stack([dst, src])
    return data
