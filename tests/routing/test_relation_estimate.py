"""The graph router's relation estimate (``router.relation_estimate``): R learns from what the tasks do.

Hand-made cases where the answer is known: two groups of tasks whose own loss pulls their routing towards
different skills; the estimate must score every within-group pair above every cross-group pair, and R must follow it.
"""

from __future__ import annotations

import pytest
import torch

from taskgraph.errors import ModelError
from taskgraph.metrics import pair_auroc
from taskgraph.routing.graph import GraphRouter
from taskgraph.routing.relation_estimate import count_sketch
from taskgraph.routing.relations import RelationMatrix, all_pairs, signal_similarity, target_pull
from taskgraph.spec.models import RouterSpec, Spec
from taskgraph.train.run_checkpoint import spec_hash
from tests.conftest import minimal_spec

GROUP = 3  # tasks 0..2 want skill 0, tasks 3..5 want skill 1


def test_signal_similarity_on_hand_made_signals():
    signal = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])  # two pairs along two axes
    c = signal_similarity(signal, all_pairs(4))  # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert c.shape == (6,) and bool(((c >= 0) & (c <= 1)).all())
    within, across = c[[0, 5]], c[[1, 2, 3, 4]]
    assert float(within.min()) > 0.85 and float(across.max()) < 0.25
    # a shared component (every task does it) says nothing about a pair: centring removes it
    assert torch.allclose(signal_similarity(signal + torch.tensor([5.0, 5.0]), all_pairs(4)), c)
    same = signal_similarity(torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]), torch.tensor([[0, 0], [1, 2]]))
    assert same.tolist() == pytest.approx([1.0, 0.0])  # identical centred signals → 1, opposite → 0


def test_target_pull_and_set_targets():
    r, target = torch.tensor([0.2, 0.9, 0.5]), torch.tensor([0.0, 1.0, 0.0])
    mask = torch.tensor([True, True, False])
    assert float(target_pull(r, target, mask, 2.0)) == pytest.approx(2.0 * (0.04 + 0.01) / 2)
    assert float(target_pull(r, target, torch.zeros(3, dtype=torch.bool), 2.0)) == 0.0
    rel = RelationMatrix(4, track_targets=True)
    rel.set_targets(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    assert rel.targeted.all() and rel.target.tolist() == pytest.approx([1, 0, 0, 0, 0, 1], abs=1e-6)
    with pytest.raises(ModelError, match="track_targets"):
        RelationMatrix(4).set_targets(torch.zeros(4, 2))
    assert "target" not in dict(RelationMatrix(4).named_buffers())  # off: no new state, old checkpoints load


def _train_router(estimate: str, steps: int = 60, seed: int = 0) -> GraphRouter:
    """6 tasks, 2 layers, 4 skills; task t's loss is −Σ w_t[skill of its group] (and the router's regularizer)."""
    torch.manual_seed(seed)
    spec = RouterSpec.model_validate({"kind": "graph", "relation_estimate": estimate, "estimate_every": 10})
    router = GraphRouter(2 * GROUP, 2, 1, 4, spec)
    want = torch.zeros(2 * GROUP, 2, 1, 4)  # [T, L, H, K]
    want[:GROUP, :, :, 0], want[GROUP:, :, :, 1] = 1.0, 1.0
    opt = torch.optim.Adam(router.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    router.train()
    for _ in range(steps):
        tasks = torch.randperm(2 * GROUP, generator=gen)[:3].sort().values  # [U]
        out = router(tasks)
        loss = -(out.weights * want[tasks]).sum(dim=(1, 2, 3)).mean() + router.regularizer()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return router


@pytest.mark.parametrize("estimate", ["gradient", "routing"])
def test_the_estimate_recovers_the_groups_and_r_follows_it(estimate):
    torch.set_num_threads(1)
    router = _train_router(estimate)
    rel = router.relations
    same = (rel.index[0] < GROUP) == (rel.index[1] < GROUP)  # [E] the truth
    assert bool(rel.targeted.all())
    target = rel.target
    assert float(target[same].min()) > float(target[~same].max())  # the estimate alone separates the groups
    index, r = router.relation_weights()
    truth = torch.zeros(2 * GROUP, 2 * GROUP, dtype=torch.bool)
    truth[:GROUP, :GROUP] = truth[GROUP:, GROUP:] = True
    truth.fill_diagonal_(False)
    learned = torch.zeros(2 * GROUP, 2 * GROUP)
    learned[index[0], index[1]] = learned[index[1], index[0]] = r
    assert pair_auroc(learned, truth.numpy(), torch.zeros_like(truth).numpy()) == 1.0
    # R moved towards the estimate: closer to it than the neutral start (ρ = 0.5) is
    assert float((r - target).abs().mean()) < float((0.5 - target).abs().mean())


def test_gradient_signal_is_the_sum_of_centred_routing_gradients():
    router = _train_router("gradient", steps=1)
    signal = router.task_signal.view(2 * GROUP, 2, 1, 4)  # [T, L, H, K]
    seen = signal.abs().sum(dim=(1, 2, 3)) > 0
    assert 0 < int(seen.sum()) <= 3  # only the one batch's tasks
    assert torch.allclose(signal.sum(-1), torch.zeros(2 * GROUP, 2, 1), atol=1e-6)  # centred over the K skills
    # a task of group 0 is pushed towards skill 0, of group 1 towards skill 1
    for t in seen.nonzero().squeeze(1).tolist():
        assert int(signal[t].mean(dim=(0, 1)).argmin()) == (0 if t < GROUP else 1)  # loss falls along −gradient


def test_estimate_fields_leave_the_hash_of_specs_that_do_not_use_them():
    base = minimal_spec(router={"kind": "graph"})
    plain = Spec.model_validate(base)
    assert "relation_estimate" not in str(plain.model_dump())
    assert plain.router.params.relation_estimate == "none"  # the default: what every existing spec trained with
    on = Spec.model_validate({**base, "router": {"kind": "graph", "relation_estimate": "gradient"}})
    assert spec_hash(on) != spec_hash(plain)


def test_count_sketch_keeps_inner_products():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, generator=gen)
    noise = torch.randn(20_000, generator=gen)
    y = 0.6 * x + 0.8 * noise  # cos(x, y) ≈ 0.6
    rows = torch.stack([x, y, -x])  # [3, P]
    sketch = count_sketch(rows, 4096)  # [3, D]
    true_cos = float(torch.nn.functional.cosine_similarity(x, y, dim=0))
    est_cos = float(torch.nn.functional.cosine_similarity(sketch[0], sketch[1], dim=0))
    assert abs(est_cos - true_cos) < 0.05
    assert torch.allclose(sketch[2], -sketch[0])  # linear, the same buckets and signs for every row
    assert torch.equal(count_sketch(rows, 4096), sketch)  # fixed by the seed
    small = torch.eye(3)
    assert torch.allclose(count_sketch(small, 1024).abs().sum(1), torch.ones(3))  # each coordinate lands once, ±1


def test_update_estimate_separates_tasks_whose_updates_point_apart():
    spec = RouterSpec.model_validate({"kind": "graph", "relation_estimate": "update", "estimate_every": 5})
    router = GraphRouter(2 * GROUP, 2, 1, 4, spec)
    assert tuple(router.task_signal.shape) == (2 * GROUP, 4096)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3_000, generator=gen), torch.randn(3_000, generator=gen)  # two groups' update directions
    router.train()
    for step in range(1, 11):
        router.relations.steps.fill_(step)
        assert router.wants_task_updates() == (step % 5 == 0)  # every N steps
    for _ in range(4):  # noisy per-step updates: the group direction plus noise of the same size
        tasks = torch.arange(2 * GROUP)
        direction = torch.stack([a if t < GROUP else b for t in tasks.tolist()])  # [T, P]
        router.observe_task_updates(tasks, direction + torch.randn(direction.shape, generator=gen))
    rel = router.relations
    same = (rel.index[0] < GROUP) == (rel.index[1] < GROUP)  # [E] the truth
    assert bool(rel.targeted.all())
    assert float(rel.target[same].min()) > 0.8 > 0.3 > float(rel.target[~same].max())
    router.eval()
    assert not router.wants_task_updates()  # only while training


def test_only_the_update_estimate_asks_for_task_updates():
    for estimate in ("none", "routing", "gradient"):
        spec = RouterSpec.model_validate({"kind": "graph", "relation_estimate": estimate, "estimate_every": 1})
        router = GraphRouter(4, 2, 1, 4, spec)
        router.train()
        assert not router.wants_task_updates()
    from taskgraph.routing.poly import PolyRouter

    poly = PolyRouter(4, 2, 1, 4, RouterSpec.model_validate({"kind": "poly"}))
    assert not poly.wants_task_updates()
    with pytest.raises(ModelError, match="adapter updates"):
        poly.observe_task_updates(torch.arange(2), torch.zeros(2, 3))
