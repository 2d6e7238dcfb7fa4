"""The graph router's structure graph — adapters and layers — and one GNN round over it as a single product.

The structure edges of :func:`taskgraph.graph.hetero.to_hetero` (``(adapter, in, layer)``, ``(layer, has, adapter)``,
``(adapter, next, adapter)``, ``(adapter, prev, adapter)``) never change. With ``GraphConv(aggr="mean")`` on each, a
round's output for a structure node i is

.. math::
    y_i = \\sum_{e \\to \\mathrm{type}(i)} W^{rel}_e (M_e x)_i + b_e + W^{root}_e x_i

with ``M_e`` the mean adjacency of edge type e (:func:`mean_adjacency`). Every term is a fixed matrix times ``x``,
then a weight: stacking the fixed matrices as *slots* ``P_s`` (``M_e`` and the identity on e's destination nodes, for
every e) gives ``y = [P_1 x | … | P_S x] · [W_1 | … | W_S]ᵀ + C · [b_e]`` (``C`` says which biases reach a node):
one product with the fixed stacked operator (:func:`structure_operator`, built once) and one with the stacked weights
(:func:`structure_round`), the same parameters and the same sum in one reduction — where PyG runs a gather /
scatter-mean and two ``Linear`` layers per edge type, forward and backward.

Nodes are numbered adapters first (``[L·K]``, skill k of layer l at ``l·K + k``), then layers (``[L]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.graph.vocab import (
    ADAPTER,
    ADAPTER_IN_LAYER,
    ADAPTER_NEXT_ADAPTER,
    ADAPTER_PREV_ADAPTER,
    LAYER,
    LAYER_HAS_ADAPTER,
)

STRUCTURE_EDGES = (ADAPTER_IN_LAYER, LAYER_HAS_ADAPTER, ADAPTER_NEXT_ADAPTER, ADAPTER_PREV_ADAPTER)
STRUCTURE_NODES = (ADAPTER, LAYER)  # the order of the nodes in the stacked operator
# a round over the structure multiplies by fixed matrices (else PyG's gather / scatter-mean): the stacked operator up
# to 8·(L·K + L)² entries (64 MiB), else the per-edge-type mean adjacencies up to (L·K)² entries (16 MiB)
STACKED_STRUCTURE_LIMIT = 1 << 24
DENSE_STRUCTURE_LIMIT = 1 << 22


class StructureOperator(NamedTuple):
    """The structure round's fixed part (:func:`structure_operator`).

    ``slots [N·S, N]``: row ``i·S + s`` is slot s's row of node i (slots ``2e`` = ``M_e``, ``2e + 1`` = the identity on
    e's destination nodes), so ``(slots @ x).view(N, S·d)`` lays every term of node i side by side;
    ``bias [N, E]``: 1 where edge type e's ``lin_rel`` bias reaches node i.
    """

    slots: Tensor
    bias: Tensor


def structure_edges(num_layers: int, skills: int) -> list[Tensor]:
    """The edge index ``[2, E]`` of every :data:`STRUCTURE_EDGES` type, as :func:`~taskgraph.graph.hetero.to_hetero`
    builds them for ``num_layers`` adapted layers of ``skills`` skills (they do not depend on the tasks)."""
    from taskgraph.graph.hetero import to_hetero  # imports PyG: only when a graph router is built
    from taskgraph.graph.taskgraph import TaskGraph

    graph = TaskGraph()
    graph.add_task("task", num_labels=2)
    data = to_hetero(graph, num_layers, skills)
    return [data[edge_type].edge_index for edge_type in STRUCTURE_EDGES]


def layer_positions(num_layers: int, dim: int) -> Tensor:
    """The transformer's fixed position encoding of layer index l: ``[L, dim]`` sines and cosines."""
    pos = torch.arange(num_layers, dtype=torch.float32)[:, None]  # [L, 1]
    freq = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float32)[None] * 2 / dim)  # [1, d/2]
    enc = torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=1)  # [L, 2·(d/2)]
    return F.pad(enc, (0, dim - enc.shape[1]))  # [L, d]


def mean_adjacency(edge_index: Tensor, num_src: int, num_dst: int) -> Tensor:
    """The mean aggregation over a fixed edge set as a dense matrix ``M [num_dst, num_src]``.

    ``M[i, j]`` = (edges j → i) / (edges into i), so ``M @ x_src`` is PyG's ``aggr="mean"`` of the
    messages ``x_j`` (a node with no incoming edge gets 0, as a scatter-mean gives).
    """
    src, dst = edge_index  # [E], [E]
    ones = torch.ones(src.shape[0], device=edge_index.device)  # [E]
    degree = torch.zeros(num_dst, device=edge_index.device).index_add(0, dst, ones)  # [num_dst]
    m = torch.zeros(num_dst, num_src, device=edge_index.device)  # [num_dst, num_src]
    return m.index_put((dst, src), ones / degree[dst], accumulate=True)


def structure_operator(means: Mapping[tuple[str, str, str], Tensor], sizes: Mapping[str, int]) -> StructureOperator:
    """The stacked slots and bias pattern of :data:`STRUCTURE_EDGES` from their mean adjacencies ``M_e [N_dst, N_src]``
    and the node counts ``sizes`` (``{adapter: L·K, layer: L}``)."""
    start, n = {}, 0
    for node_type in STRUCTURE_NODES:
        start[node_type], n = n, n + sizes[node_type]
    device = means[STRUCTURE_EDGES[0]].device
    slots = torch.zeros(n, 2 * len(STRUCTURE_EDGES), n, device=device)  # [N, S, N]
    bias = torch.zeros(n, len(STRUCTURE_EDGES), device=device)  # [N, E]
    for e, (src, _, dst) in enumerate(STRUCTURE_EDGES):
        rows = slice(start[dst], start[dst] + sizes[dst])
        slots[rows, 2 * e, start[src] : start[src] + sizes[src]] = means[(src, _, dst)]
        slots[rows, 2 * e + 1, rows] = torch.eye(sizes[dst], device=device)
        bias[rows, e] = 1.0
    return StructureOperator(slots.reshape(n * slots.shape[1], n), bias)  # [N·S, N], [N, E]


def structure_round(
    x: Tensor, operator: StructureOperator, weights: Sequence[Tensor], biases: Sequence[Tensor]
) -> Tensor:
    """``Σ_s (P_s x) W_sᵀ + C b``: the summed ``GraphConv`` outputs of every structure edge type at every node.

    Args:
        x: ``[N, d]`` the structure nodes (:data:`STRUCTURE_NODES` order).
        operator: :func:`structure_operator`'s slots ``[N·S, N]`` and bias pattern ``[N, E]``.
        weights: the S slot weights ``[d_out, d]``, in the slots' order (``lin_rel``, ``lin_root`` per edge type).
        biases: the E ``lin_rel`` biases ``[d_out]``, in :data:`STRUCTURE_EDGES` order.

    Returns:
        ``[N, d_out]``.
    """
    n, d = x.shape
    terms = (operator.slots.to(x.dtype) @ x).view(n, len(weights) * d)  # [N, S·d]
    weight = torch.stack(list(weights), dim=1).view(-1, len(weights) * d)  # [d_out, S·d]
    bias = operator.bias.to(x.dtype) @ torch.stack(list(biases))  # [N, d_out]
    return torch.addmm(bias, terms, weight.t())  # [N, d_out]


Structure = StructureOperator | dict[tuple[str, str, str], Tensor] | None  # what a GNN round multiplies by


class StructureGraph(nn.Module):
    """The structure edges of ``num_layers`` adapted layers of ``skills`` skills and what a GNN round over them
    multiplies by — the stacked operator within :data:`STACKED_STRUCTURE_LIMIT`, else the mean adjacency per edge type
    within :data:`DENSE_STRUCTURE_LIMIT`, else nothing (PyG's message passing): :attr:`mode` ``stacked`` | ``means``
    | ``pyg``. Every tensor is a non-persistent buffer: rebuilt with the router, moved with it, never saved."""

    def __init__(self, num_layers: int, skills: int) -> None:
        super().__init__()
        sizes = {ADAPTER: num_layers * skills, LAYER: num_layers}
        stacked = 2 * len(STRUCTURE_EDGES) * (sizes[ADAPTER] + sizes[LAYER]) ** 2 <= STACKED_STRUCTURE_LIMIT
        self.mode = "stacked" if stacked else "means" if sizes[ADAPTER] ** 2 <= DENSE_STRUCTURE_LIMIT else "pyg"
        means = {}
        for i, (edge_type, index) in enumerate(zip(STRUCTURE_EDGES, structure_edges(num_layers, skills))):
            self.register_buffer(f"edges_{i}", index, persistent=False)  # [2, E]
            if self.mode != "pyg":
                means[edge_type] = mean_adjacency(index, sizes[edge_type[0]], sizes[edge_type[2]])  # [N_dst, N_src]
            self.register_buffer(f"mean_{i}", means.get(edge_type), persistent=False)
        operator = structure_operator(means, sizes) if stacked else StructureOperator(None, None)
        self.register_buffer("slots", operator.slots, persistent=False)  # [N·S, N]
        self.register_buffer("bias", operator.bias, persistent=False)  # [N, E]

    def edge_index(self) -> dict[tuple[str, str, str], Tensor]:
        """``{edge type: [2, E]}`` of every :data:`STRUCTURE_EDGES` type."""
        return {et: getattr(self, f"edges_{i}") for i, et in enumerate(STRUCTURE_EDGES)}

    def operator(self) -> Structure:
        """What the encoder's structure rounds multiply by (:attr:`mode`): the stacked operator, the mean adjacency
        per edge type, or None (PyG's message passing)."""
        if self.mode == "stacked":
            return StructureOperator(self.slots, self.bias)
        if self.mode == "means":
            return {et: getattr(self, f"mean_{i}") for i, et in enumerate(STRUCTURE_EDGES)}
        return None

    def extra_repr(self) -> str:
        return f"mode={self.mode}"
