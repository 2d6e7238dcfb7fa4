"""RelationMatrix: candidate edges (dense and sparse), symmetric weights, regularisers, zero-shot slots."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from taskgraph.errors import ModelError
from taskgraph.routing.relations import (
    RelationMatrix,
    all_pairs,
    canonical_pairs,
    declared_pull,
    density_penalty,
    knn_pairs,
    relation_logit,
)


def test_all_pairs_and_canonical_pairs():
    pairs = all_pairs(4)
    assert pairs.tolist() == [[0, 0, 0, 1, 1, 2], [1, 2, 3, 2, 3, 3]]
    messy = torch.tensor([[3, 1, 2, 2, 0], [1, 3, 2, 0, 2]])  # (3,1) twice, a self-pair, (2,0) and (0,2)
    assert canonical_pairs(messy).tolist() == [[0, 1], [2, 3]]


def test_knn_pairs_finds_nearest_by_cosine_and_is_sparse():
    # two tight clusters on orthogonal axes: every neighbour of a task is in its own cluster
    gen = torch.Generator().manual_seed(0)
    a = torch.tensor([1.0, 0.0, 0.0]) + 0.01 * torch.randn(5, 3, generator=gen)
    b = torch.tensor([0.0, 1.0, 0.0]) + 0.01 * torch.randn(5, 3, generator=gen)
    pairs = knn_pairs(torch.cat([a, b]), k=2, block=3)  # blocks smaller than T: same answer
    assert bool((pairs[0] < pairs[1]).all())
    assert bool(((pairs[0] < 5) == (pairs[1] < 5)).all())  # never across clusters
    assert pairs.shape[1] <= 10 * 2
    big = knn_pairs(torch.randn(3000, 16, generator=gen), k=4)
    assert 3000 * 4 / 2 <= big.shape[1] <= 3000 * 4  # E = O(T·k), never T²
    assert knn_pairs(torch.randn(1, 4), k=3).shape == (2, 0)


def test_density_penalty_and_declared_pull_on_hand_made_tensors():
    r = torch.tensor([0.2, 0.4, 0.9])  # mean 0.5
    assert float(density_penalty(r, 0.5, 2.0)) == pytest.approx(0.0)
    assert float(density_penalty(r, 0.3, 2.0)) == pytest.approx(2.0 * 0.2**2)
    assert float(density_penalty(torch.zeros(0), 0.3, 2.0)) == 0.0
    prior = torch.tensor([0.5, 0.0, 0.6])
    declared = torch.tensor([True, False, True])
    assert float(declared_pull(r, prior, declared, 3.0)) == pytest.approx(3.0 * (0.3**2 + 0.3**2))


def test_density_penalty_does_not_drive_relations_to_zero():
    """Minimising λ_R (mean R − ρ)² alone moves the mean to ρ, not every weight to 0."""
    theta = torch.nn.Parameter(torch.tensor([-3.0, -1.0, 0.5, 2.0]))
    opt = torch.optim.SGD([theta], lr=5.0)
    for _ in range(300):
        opt.zero_grad()
        density_penalty(torch.sigmoid(theta), 0.4, 1.0).backward()
        opt.step()
    r = torch.sigmoid(theta.detach())
    assert float(r.mean()) == pytest.approx(0.4, abs=1e-3)
    assert float(r.min()) > 0.01 and float(r.max()) < 0.99


def test_dense_mode_init_from_declared_and_neutral_elsewhere():
    rel = RelationMatrix(4, [(2, 0, 0.9), (1, 3, 0.2)], density=0.3)
    index, r = rel.weights()
    assert index.shape == (2, 6) and rel.theta.shape == (6,)  # one parameter per undirected pair
    values = {tuple(p): float(w) for p, w in zip(index.T.tolist(), r.detach())}
    assert values[(0, 2)] == pytest.approx(0.9) and values[(1, 3)] == pytest.approx(0.2)
    for pair in [(0, 1), (0, 3), (1, 2), (2, 3)]:
        assert values[pair] == pytest.approx(0.3)
    assert float(rel.regularizer(1.0, 1.0).detach()) == pytest.approx((values_mean(values) - 0.3) ** 2)
    assert int(rel.declared.sum()) == 2


def values_mean(values: dict) -> float:
    return sum(values.values()) / len(values)


def test_relations_are_symmetric_in_the_message_edges():
    rel = RelationMatrix(3)
    with torch.no_grad():
        rel.theta.copy_(torch.tensor([0.1, -2.0, 1.5]))
    edge_index, r = rel.directed(*rel.weights())
    msg = {tuple(e): float(w) for e, w in zip(edge_index.T.tolist(), r.detach())}
    assert len(msg) == 6
    for (i, j), w in msg.items():
        assert msg[(j, i)] == w  # the same parameter both ways


def test_frozen_relations_take_no_gradient():
    rel = RelationMatrix(3, [(0, 1, 0.8)], learn=False)
    assert not rel.theta.requires_grad
    assert float(rel.regularizer(1.0, 1.0)) == 0.0
    _, r = rel.weights()
    assert not r.requires_grad
    with pytest.raises(ModelError, match="distinct task ids"):
        RelationMatrix(3, [(1, 1, 0.5)])


def test_sparse_mode_candidates_are_declared_plus_top_k_and_refresh_is_slot_stable():
    torch.manual_seed(0)
    T, k = 200, 3
    emb = torch.randn(T, 8)
    rel = RelationMatrix(T, [(0, 199, 0.7)], top_k=k, refresh_every=5, dense_limit=64, embeddings=emb)
    assert not rel.dense
    assert rel.index.shape[1] == 1 + T * k  # fixed slot budget: declared + T·k, never T(T−1)/2
    index, _ = rel.weights()
    pairs = set(map(tuple, index.T.tolist()))
    assert (0, 199) in pairs and len(pairs) == index.shape[1] <= 1 + T * k
    assert pairs - {(0, 199)} == set(map(tuple, knn_pairs(emb, k).T.tolist())) - {(0, 199)}
    with torch.no_grad():  # mark every slot's value so we can follow it through a refresh
        rel.theta.copy_(torch.arange(rel.theta.shape[0], dtype=torch.float32) / 1000)
    before = {tuple(p): float(t) for p, t, on in zip(rel.index.T.tolist(), rel.theta.detach(), rel.active) if on}
    moved = emb.clone()
    moved[:100] = torch.randn(100, 8)  # half the tasks move: their neighbours change
    rel.refresh(moved)
    after = {tuple(p): float(t) for p, t, on in zip(rel.index.T.tolist(), rel.theta.detach(), rel.active) if on}
    wanted = set(map(tuple, knn_pairs(moved, k).T.tolist())) | {(0, 199)}
    assert set(after) == wanted
    kept = set(before) & set(after)
    assert kept and all(after[p] == before[p] for p in kept)  # a surviving pair keeps its θ
    neutral = float(relation_logit(0.5))
    assert all(after[p] == pytest.approx(neutral) for p in set(after) - set(before))
    assert rel.index.shape[1] == 1 + T * k  # shapes never change: an optimizer keeps working
    # refresh schedule: every refresh_every training forwards
    due = []
    for _ in range(11):
        due.append(rel.refresh_due())
        rel.tick()
    assert due == [True, False, False, False, False, True, False, False, False, False, True]


def test_add_task_appends_declared_slots_with_inbound_messages_only():
    rel = RelationMatrix(3)
    new = rel.add_task({0: 0.9, 2: 0.25})
    assert new == 3 and rel.num_tasks == 4 and rel.num_trained == 3
    index, r = rel.weights()
    assert index[:, -2:].tolist() == [[0, 2], [3, 3]]
    assert_close(r[-2:], torch.tensor([0.9, 0.25]))
    edge_index, _ = rel.directed(index, r)
    edges = set(map(tuple, edge_index.T.tolist()))
    assert (0, 3) in edges and (2, 3) in edges
    assert (3, 0) not in edges and (3, 2) not in edges  # the new task sends nothing to trained tasks
    assert bool(rel.declared[-2:].all())
    second = rel.add_task({3: 1.0})
    edges = set(map(tuple, rel.directed(*rel.weights())[0].T.tolist()))
    assert second == 4 and (3, 4) in edges and (4, 3) in edges  # two zero-shot tasks talk both ways
    with pytest.raises(ModelError, match="out of range"):
        rel.add_task({9: 0.5})
    assert math.isclose(float(relation_logit(0.5)), 0.0, abs_tol=1e-7)
