"""GraphEncoder: the HeteroConv stack over tasks, adapters and layers; R as a differentiable edge weight."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from taskgraph.errors import ModelError
from taskgraph.graph.vocab import ADAPTER, LAYER, TASK, TASK_RELATES_TASK
from taskgraph.routing.gnn import (
    CONVS,
    GraphEncoder,
    damped_mean_weights,
    description_features,
)
from taskgraph.routing.graph import GraphRouter
from taskgraph.spec.models import RouterSpec

T, L, K, D = 4, 3, 2, 16


def inputs(seed: int = 0) -> tuple[dict, dict, torch.Tensor]:
    """Node features and edges of a 4-task graph, taken from a graph router's structure."""
    gen = torch.Generator().manual_seed(seed)
    router = GraphRouter(T, L, 1, K, RouterSpec(kind="graph", gnn={"hidden": D}))
    index = torch.tensor([[0, 0, 1, 2], [1, 2, 3, 3]])  # pairs i < j
    edges = {TASK_RELATES_TASK: torch.cat([index, index.flip(0)], dim=1)}
    edges.update(router.structure.edge_index())
    x = {
        TASK: torch.randn(T, D, generator=gen),
        ADAPTER: torch.randn(L * K, D, generator=gen),
        LAYER: torch.randn(L, D, generator=gen),
    }
    r = torch.tensor([0.9, 0.1, 0.5, 0.7])
    return x, edges, torch.cat([r, r])


@pytest.mark.parametrize("conv", CONVS)
def test_shapes_and_output_depends_on_relations(conv: str):
    torch.manual_seed(0)
    encoder = GraphEncoder(D, layers=2, conv=conv)
    x, edges, r = inputs()
    out = encoder(x, edges, r)
    assert {k: tuple(v.shape) for k, v in out.items()} == {TASK: (T, D), ADAPTER: (L * K, D), LAYER: (L, D)}
    changed = r.clone()
    changed[0] = changed[4] = 0.05  # weaken the 0–1 relation, both directions
    out2 = encoder(x, edges, changed)
    moved = (out2[TASK] - out[TASK]).detach().abs().amax(dim=1)  # [T]
    assert float(moved[0]) > 1e-4 and float(moved[1]) > 1e-4  # the two ends of the edge move
    assert_close(out2[ADAPTER], out[ADAPTER])  # the adapter side does not depend on task relations
    r_param = r.clone().requires_grad_(True)
    encoder(x, edges, r_param)[TASK].pow(2).sum().backward()
    assert r_param.grad is not None and float(r_param.grad.abs().min()) > 0  # every relation edge reaches the output


def test_damped_mean_weights_by_hand():
    dst = torch.tensor([0, 0, 1])
    r = torch.tensor([0.5, 1.5, 0.25])
    w = damped_mean_weights(dst, r, num_nodes=3)
    assert_close(w, torch.tensor([0.5 / 3.0, 1.5 / 3.0, 0.25 / 1.25]))


def test_a_task_without_relations_keeps_its_own_embedding_path():
    """Relation weight 0 on every edge equals having no relation edges at all (graphconv)."""
    torch.manual_seed(0)
    encoder = GraphEncoder(D, layers=1, conv="graphconv")
    x, edges, r = inputs()
    zero = encoder(x, edges, torch.zeros_like(r))
    empty = dict(edges)
    empty[TASK_RELATES_TASK] = torch.zeros(2, 0, dtype=torch.long)
    assert_close(zero[TASK], encoder(x, empty, torch.zeros(0))[TASK])


def test_description_features_are_deterministic_and_similar_for_similar_texts():
    texts = ["sentiment of movie reviews", "sentiment of tweets about movies", "topic of news articles", None]
    f = description_features(texts, 256)
    assert f.shape == (4, 256)
    assert_close(f, description_features(texts, 256))
    assert_close(f[:3].norm(dim=1), torch.ones(3))
    assert float(f[3].abs().sum()) == 0.0
    sim = f @ f.T
    assert float(sim[0, 1]) > float(sim[0, 2]) + 0.1


def test_bad_conv_is_a_clear_error():
    with pytest.raises(ModelError, match="choose from"):
        GraphEncoder(D, conv="gcnn")
    assert "conv=gat, layers=2" in repr(GraphEncoder(D, layers=2, conv="gat"))
