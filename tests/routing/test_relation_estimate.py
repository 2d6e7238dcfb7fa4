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
