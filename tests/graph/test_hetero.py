"""to_hetero: node/edge counts, weights, and a HeteroConv that runs forward and backward."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GraphConv, HeteroConv, SAGEConv

from taskgraph.errors import GraphError
from taskgraph.graph import EDGE_TYPES, TaskGraph
from taskgraph.graph.hetero import to_hetero
from taskgraph.graph.vocab import ADAPTER_NEXT_ADAPTER, TASK_RELATES_TASK, TASK_USES_ADAPTER


def graph() -> TaskGraph:
    g = TaskGraph("toy")
    for name in "abcd":
        g.add_task(name, 2)
    g.relate("a", "b", 0.8)
    g.relate("c", "d", 0.4)
    return g


def test_counts_and_weights():
    L, K = 3, 4
    data = to_hetero(graph(), L, K)
    assert data["task"].num_nodes == 4 and data["adapter"].num_nodes == L * K and data["layer"].num_nodes == L
    assert set(data.edge_types) == set(EDGE_TYPES)
    rel = data[TASK_RELATES_TASK]
    assert rel.edge_index.tolist() == [[0, 2, 1, 3], [1, 3, 0, 2]]
    assert rel.edge_weight.tolist() == pytest.approx([0.8, 0.4, 0.8, 0.4])
    assert data[TASK_USES_ADAPTER].edge_index.shape == (2, 4 * L * K)
    nxt = data[ADAPTER_NEXT_ADAPTER].edge_index
    assert nxt.shape == (2, (L - 1) * K * K)
    assert bool(((nxt[1] // K) == (nxt[0] // K) + 1).all())  # always to the next layer
    data.validate(raise_on_error=True)


def test_learned_weights_stay_differentiable():
    g = graph()
    theta = torch.zeros(6, requires_grad=True)
    pairs = torch.tensor([[0, 0, 0, 1, 1, 2], [1, 2, 3, 2, 3, 3]])
    data = to_hetero(g, 2, 2, relation_index=pairs, relation_weight=torch.sigmoid(theta))
    assert data[TASK_RELATES_TASK].edge_index.shape == (2, 12)
    data[TASK_RELATES_TASK].edge_weight.sum().backward()
    assert theta.grad is not None and bool((theta.grad != 0).all())


def test_heteroconv_forward_backward():
    torch.manual_seed(0)
    L, K, D = 2, 3, 8
    data = to_hetero(graph(), L, K)
    x = {t: torch.randn(data[t].num_nodes, D, requires_grad=True) for t in data.node_types}
    conv = HeteroConv(
        {et: (GraphConv(D, D) if et == TASK_RELATES_TASK else SAGEConv((D, D), D)) for et in data.edge_types},
        aggr="sum",
    )
    edge_weight = {TASK_RELATES_TASK: data[TASK_RELATES_TASK].edge_weight}
    out = conv(x, data.edge_index_dict, edge_weight_dict=edge_weight)
    assert out["task"].shape == (4, D) and out["adapter"].shape == (L * K, D) and out["layer"].shape == (L, D)
    sum(o.sum() for o in out.values()).backward()
    assert all(x[t].grad is not None for t in x)


def test_errors():
    with pytest.raises(GraphError, match="no tasks"):
        to_hetero(TaskGraph(), 2, 2)
    with pytest.raises(GraphError, match="num_layers"):
        to_hetero(graph(), 0, 2)
    with pytest.raises(GraphError, match="together"):
        to_hetero(graph(), 2, 2, relation_index=torch.zeros(2, 1, dtype=torch.long))
