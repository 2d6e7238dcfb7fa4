"""The graph router's warm start (``router.warm_start: relations``): task features from the declared relations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from taskgraph.errors import ModelError
from taskgraph.routing import GraphRouter
from taskgraph.routing.graph_priors import declared_matrix, spectral_task_init
from taskgraph.spec.models import RelationsSpec, RouterSpec

TASKS = ("a", "b", "c", "d", "e", "f")  # a, b, c related; d, e, f related; none across
DECLARED = [(x, y, 1.0) for g in ("abc", "def") for i, x in enumerate(g) for y in g[i + 1 :]] + [
    (x, y, 0.0) for x in "abc" for y in "def"
]


def blocks() -> torch.Tensor:
    ids = {n: i for i, n in enumerate(TASKS)}
    return declared_matrix(6, [(ids[a], ids[b], w) for a, b, w in DECLARED])  # [6, 6]


def test_declared_matrix_fills_the_undeclared_with_the_neutral_start():
    m = declared_matrix(3, [(0, 1, 1.0)])
    assert m.tolist() == [[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [0.5, 0.5, 0.0]]
    with pytest.raises(ModelError, match="no pair of trained tasks is declared"):
        declared_matrix(3, [(0, 5, 1.0)])  # a zero-shot guest only


def test_spectral_features_of_two_blocks_separate_the_blocks():
    x = spectral_task_init(blocks(), 16, noise=0.0, generator=torch.Generator().manual_seed(0))  # [6, 16]
    assert x.shape == (6, 16)
    assert float(x.norm(dim=1).mean()) == pytest.approx(math.sqrt(16), rel=1e-5)  # a randn row's norm
    cos = F.cosine_similarity(x[:, None], x[None, :], dim=-1)  # [6, 6]
    assert float(cos[:3, :3].min()) > 0.99 and float(cos[3:, 3:].min()) > 0.99  # a block: one direction
    assert float(cos[:3, 3:].max()) < -0.99  # the other block: the opposite one (centred over the tasks)
    noisy = spectral_task_init(blocks(), 16, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert 0 < float((noisy - x).std()) < 0.2  # the noise is σ = 0.1, nothing else moves


def test_a_warm_started_router_routes_declared_groups_alike_from_step_zero():
    def spread(warm: str) -> tuple[float, float]:
        torch.manual_seed(0)
        spec = RouterSpec(kind="graph", gnn={"hidden": 16}, warm_start=warm, descriptions=False)
        r = GraphRouter(6, 2, 1, 4, spec, relations=RelationsSpec(declared=DECLARED), task_names=list(TASKS))
        with torch.no_grad():
            w = r.eval().encode().weights  # [T, L, H, K]
        d = (w[:, None] - w[None, :]).pow(2).sum(-1).mean(dim=(-1, -2))  # [T, T] routing distance
        within = (d[:3, :3].sum() + d[3:, 3:].sum()) / 12  # 6 ordered pairs per block
        return float(within), float(d[:3, 3:].mean())

    within, across = spread("relations")
    assert within < 0.05 * across  # the groups route apart, each group alike
    within_cold, across_cold = spread("none")
    assert within_cold > 0.2 * across_cold  # from randn features the groups are not visible in routing


def test_warm_start_without_declared_relations_is_a_clear_error():
    spec = RouterSpec(kind="graph", gnn={"hidden": 16}, warm_start="relations")
    with pytest.raises(ModelError, match="router.warm_start: relations.*declare relations"):
        GraphRouter(3, 2, 1, 4, spec, task_names=["a", "b", "c"])
