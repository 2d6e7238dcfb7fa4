"""The graph router's encoder: a PyG ``HeteroConv`` stack over the task / adapter / layer graph.

Our design (docs/methods.md §1). The graph is :func:`taskgraph.graph.hetero.to_hetero`'s: node types
``task`` [T], ``adapter`` [L·K], ``layer`` [L]. The encoder passes messages along

* ``(task, relates, task)`` — weighted by the learned relations R (differentiably):
  ``graphconv`` / ``sage``: a ``GraphConv`` (sum) whose edge weight is the *damped mean* weight
  ``R_ij / (1 + Σ_{j'} R_ij')`` (so a task with weak relations hears little, one with strong
  relations tends to the R-weighted mean of its neighbours, and the scale does not grow with the
  number of neighbours); ``gat``: a ``GATConv(edge_dim=1)`` with R as the edge feature;
* ``(adapter, in, layer)``, ``(layer, has, adapter)``, ``(adapter, next, adapter)``,
  ``(adapter, prev, adapter)`` — the inventory's structure (T-independent, ``O(L·K²)``).

The ``(task, uses, adapter)`` edges join every task to every adapter with one and the same
weight before routing. Messages along them would hand every task the same mean of all adapters
(and every adapter the mean of all tasks) — a constant — at a gather/scatter cost of
``O(T·L·K·hidden)``, the dominant cost at large T. They are the edges the router *outputs* weights for: its bilinear read-out
(:mod:`taskgraph.routing.graph`) scores every (task, adapter) pair as one dense matmul.

Each GNN layer is ``h ← h + GELU(HeteroConv(h))`` (sum over edge types), and a LayerNorm per node
type closes the stack.

The structure edges never change, so with ``graphconv`` (the default) a round over them is a product with fixed
matrices, where PyG runs a gather / scatter-mean and two ``Linear`` layers per edge type each way (every training
step; the step is launch-bound on a GPU). Up to the router's size limits, the round is one product with a stacked
operator and one with the stacked ``lin_rel`` / ``lin_root`` weights (:mod:`taskgraph.routing.structure`), and the
relation conv is :func:`relation_conv` — the same ``GraphConv`` math and parameters as PyG's, summed in another order
(equal to rounding); beyond them, :func:`reference_round` multiplies by each edge type's mean adjacency and sums
what PyG's scatter-mean sums; beyond that, PyG.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.errors import ModelError
from taskgraph.graph.vocab import ADAPTER, LAYER, NODE_TYPES, TASK, TASK_RELATES_TASK
from taskgraph.routing.structure import STRUCTURE_EDGES, STRUCTURE_NODES, StructureOperator, structure_round

CONVS = ("graphconv", "gat", "sage")
ENCODED_EDGES = (TASK_RELATES_TASK, *STRUCTURE_EDGES)
_WORD = re.compile(r"[a-z0-9]+")


# ----------------------------------------------------------------------------- pure functions
def damped_mean_weights(dst: Tensor, r: Tensor, num_nodes: int) -> Tensor:
    """Edge weights ``R_e / (1 + Σ_{e' → dst(e)} R_e')`` for a sum aggregation: ``dst [E]``, ``r [E]`` → ``[E]``."""
    total = r.new_zeros(num_nodes).index_add(0, dst, r)  # [N] Σ R into each node
    return r / (1.0 + total.index_select(0, dst))  # [E]


def relation_conv(h: Tensor, edge_index: Tensor, weight: Tensor, rel: nn.Module, root: nn.Module) -> Tensor:
    """PyG's ``GraphConv(aggr="add")`` with edge weights, ``lin_rel(Σ_{e: j → i} w_e h_j) + lin_root(h_i)``, as one
    gather / scatter-add and two products: ``h [T, d]``, ``edge_index [2, E]``, ``weight [E]`` → ``[T, d]``."""
    messages = h.index_select(0, edge_index[0]) * weight[:, None]  # [E, d]
    total = h.new_zeros(h.shape).index_add(0, edge_index[1], messages)  # [T, d]
    return torch.addmm(F.linear(total, rel.weight, rel.bias), h, root.weight.t())  # [T, d]


def description_features(texts: Sequence[str | None], dim: int) -> Tensor:
    """Hashed bag-of-words vectors of task descriptions: ``[T, dim]``, unit norm (zero rows for None).

    Each lower-cased word and word bigram adds ±1 to the bucket ``sha256(token) mod dim`` (the
    sign from another byte of the hash), so similar descriptions get similar vectors with no
    model and the same numbers on every machine.
    """
    out = torch.zeros(len(texts), dim)
    for row, text in enumerate(texts):
        words = _WORD.findall((text or "").lower())
        for token in words + [a + " " + b for a, b in zip(words, words[1:])]:
            digest = hashlib.sha256(token.encode("utf-8")).digest()
            bucket = int.from_bytes(digest[:8], "little") % dim
            out[row, bucket] += 1.0 if digest[8] & 1 else -1.0
    return F.normalize(out, dim=-1)  # zero rows stay zero


def _relation_conv(conv: str, hidden: int) -> nn.Module:
    from torch_geometric.nn import GATConv, GraphConv

    if conv == "gat":
        return GATConv(hidden, hidden, edge_dim=1, add_self_loops=False)
    return GraphConv(hidden, hidden, aggr="add")  # graphconv, and sage (SAGEConv takes no edge weight)


def _structure_conv(conv: str, hidden: int) -> nn.Module:
    from torch_geometric.nn import GATConv, GraphConv, SAGEConv

    if conv == "gat":
        return GATConv((hidden, hidden), hidden, add_self_loops=False)
    if conv == "sage":
        return SAGEConv((hidden, hidden), hidden)
    return GraphConv((hidden, hidden), hidden, aggr="mean")


# ----------------------------------------------------------------------------- the module
class GraphEncoder(nn.Module):
    r"""``layers`` rounds of heterogeneous message passing with residuals, then LayerNorm per node type.

    .. math::
        h^{(n+1)}_v = h^{(n)}_v + \mathrm{GELU}\Bigl(\sum_{\text{edge types } e \to v}
        \mathrm{conv}_e\bigl(h^{(n)}_{\mathrm{src}}, h^{(n)}_v\bigr)\Bigr)

    Args:
        hidden: d, the size of every node embedding.
        layers: message-passing rounds. (default: ``2``)
        conv: ``graphconv`` | ``gat`` | ``sage`` (see the module docstring). (default: ``graphconv``)

    Shapes:
        - **input:** ``x`` ``{task: [T, d], adapter: [L·K, d], layer: [L, d]}``; ``edge_index`` for
          :data:`ENCODED_EDGES`; ``relation_weight [E]`` for the ``relates`` edges.
        - **output:** the same node types and shapes.
    """

    def __init__(self, hidden: int, layers: int = 2, conv: str = "graphconv") -> None:
        super().__init__()
        if conv not in CONVS:
            raise ModelError(f"unknown GNN conv {conv!r}; choose from {list(CONVS)}")
        if layers < 1 or hidden < 1:
            raise ModelError(f"the GNN needs layers ≥ 1 and hidden ≥ 1, got layers={layers}, hidden={hidden}")
        from torch_geometric.nn import (
            HeteroConv,  # imported on first use: reading a spec must not pay for PyG
        )

        self.hidden, self.conv = hidden, conv
        self.convs = nn.ModuleList(
            HeteroConv(
                {
                    TASK_RELATES_TASK: _relation_conv(conv, hidden),
                    **{et: _structure_conv(conv, hidden) for et in STRUCTURE_EDGES},
                },
                aggr="sum",
            )
            for _ in range(layers)
        )
        self.norms = nn.ModuleDict({nt: nn.LayerNorm(hidden) for nt in NODE_TYPES})

    def forward(
        self,
        x: dict[str, Tensor],
        edge_index: dict[tuple[str, str, str], Tensor],
        relation_weight: Tensor,
        structure: StructureOperator | Mapping[tuple[str, str, str], Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """``structure``, with ``graphconv``: :func:`~taskgraph.routing.structure.structure_operator` of the structure
        edges (a round over them is then two products, equal to PyG's to rounding), or their
        :func:`~taskgraph.routing.structure.mean_adjacency` per edge type (:func:`reference_round`: PyG's sums, one
        product per edge type); None: PyG's message passing (see the module docstring)."""
        relates = edge_index[TASK_RELATES_TASK]  # [2, E]
        if self.conv == "gat":
            extra = {"edge_attr_dict": {TASK_RELATES_TASK: relation_weight[:, None]}}  # [E, 1]
        else:
            weight = damped_mean_weights(relates[1], relation_weight, x[TASK].shape[0])  # [E]
            extra = {"edge_weight_dict": {TASK_RELATES_TASK: weight}}
        if isinstance(structure, StructureOperator) and self.conv == "graphconv":
            return self._stacked(x, relates, weight, structure)
        means = structure if isinstance(structure, Mapping) and self.conv == "graphconv" else None
        h = x
        for conv in self.convs:
            out = (
                reference_round(conv, h, relates, weight, means) if means is not None else conv(h, edge_index, **extra)
            )
            h = {nt: h[nt] + F.gelu(out[nt]) for nt in h}
        return {nt: self.norms[nt](h[nt]) for nt in NODE_TYPES}

    def _stacked(
        self, x: dict[str, Tensor], relates: Tensor, weight: Tensor, structure: StructureOperator
    ) -> dict[str, Tensor]:
        """The rounds with the structure nodes as one stacked tensor and their convolutions as
        :func:`~taskgraph.routing.structure.structure_round`."""
        task = x[TASK]  # [T, d]
        nodes = torch.cat([x[nt] for nt in STRUCTURE_NODES])  # [L·K + L, d]
        for conv in self.convs:
            convs = [conv.convs[et] for et in STRUCTURE_EDGES]
            weights = [w for c in convs for w in (c.lin_rel.weight, c.lin_root.weight)]
            out = structure_round(nodes, structure, weights, [c.lin_rel.bias for c in convs])  # [L·K + L, d]
            relation = conv.convs[TASK_RELATES_TASK]
            task = task + F.gelu(relation_conv(task, relates, weight, relation.lin_rel, relation.lin_root))  # [T, d]
            nodes = nodes + F.gelu(out)  # [L·K + L, d]
        adapter, layer = nodes.split([x[ADAPTER].shape[0], x[LAYER].shape[0]])  # [L·K, d], [L, d]
        return {TASK: self.norms[TASK](task), ADAPTER: self.norms[ADAPTER](adapter), LAYER: self.norms[LAYER](layer)}

    def extra_repr(self) -> str:
        return f"conv={self.conv}, layers={len(self.convs)}, hidden={self.hidden}"


def reference_round(
    conv: nn.Module,
    h: dict[str, Tensor],
    relates: Tensor,
    weight: Tensor,
    means: Mapping[tuple[str, str, str], Tensor],
) -> dict[str, Tensor]:
    """One ``HeteroConv`` round of ``GraphConv`` layers computed edge type by edge type (what
    :func:`~taskgraph.routing.structure.structure_round` equals): the structure edges as products with their mean
    adjacency ``M [N_dst, N_src]``, ``lin_rel(M x_src) + lin_root(x_dst)``, the relation edges through PyG; outputs
    summed per destination type in the convolutions' order, as ``HeteroConv(aggr="sum")`` does."""
    out: dict[str, list[Tensor]] = {}
    for edge_type, module in conv.convs.items():
        src, _, dst = edge_type
        if edge_type == TASK_RELATES_TASK:
            y = module(h[TASK], relates, weight)  # [T, d]
        else:
            y = module.lin_rel(means[edge_type].to(h[src].dtype) @ h[src]) + module.lin_root(h[dst])  # [N_dst, d]
        out.setdefault(dst, []).append(y)
    return {nt: ys[0] if len(ys) == 1 else torch.stack(ys).sum(0) for nt, ys in out.items()}
