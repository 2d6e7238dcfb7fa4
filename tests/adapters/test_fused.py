"""The fused routed path (every layer's factors at once per batch) equals the per-layer path: the stacked math
against the per-layer functions, and whole models — loss, logits and every gradient — for every router."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from taskgraph.adapters import BatchRouting, distinct_tasks
from taskgraph.adapters.fused import FusedFactors, group_layers
from taskgraph.adapters.mixing import (
    gather_rows,
    gather_stacked,
    mix_inventory_a,
    mix_inventory_b,
    mix_stacked_a,
    mix_stacked_b,
    select_skill_a,
    select_skill_b,
    select_stacked_a,
    select_stacked_b,
)
from taskgraph.model import TaskGraphModel
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Routing
from tests.model.conftest import _make_spec, _perturb

U, G, H, K, D, E, R = 3, 4, 2, 5, 6, 8, 3
GEN = torch.Generator().manual_seed(0)
WEIGHTS = torch.rand(U, G, H, K, generator=GEN)
A = torch.randn(G, H, K, D // H, R, generator=GEN)
B = torch.randn(G, H, K, R, E // H, generator=GEN)
CHOICE = torch.randint(0, K, (U, G, H), generator=GEN)


def test_stacked_mixing_equals_mixing_each_layer():
    a, b = mix_stacked_a(WEIGHTS, A), mix_stacked_b(WEIGHTS, B)  # [G, U, D, R], [G, U, R, E]
    sa, sb = select_stacked_a(CHOICE, A), select_stacked_b(CHOICE, B)
    for g in range(G):
        assert_close(a[g], mix_inventory_a(WEIGHTS[:, g], A[g]))
        assert_close(b[g], mix_inventory_b(WEIGHTS[:, g], B[g]))
        assert torch.equal(sa[g], select_skill_a(CHOICE[:, g], A[g]))
        assert torch.equal(sb[g], select_skill_b(CHOICE[:, g], B[g]))


def test_gather_stacked_equals_gather_rows_per_layer():
    inverse = torch.tensor([2, 0, 0, 1, 2])
    one_hot = inverse[:, None] == torch.arange(U)
    a = mix_stacked_a(WEIGHTS, A)  # [G, U, D, R]
    out = gather_stacked(a, one_hot)  # [G, 5, D, R]
    for g in range(G):
        assert torch.equal(out[g], gather_rows(a[g], inverse))


def _models(kind: str, family: str = "bert", heads: int = 1, **model: object) -> tuple[TaskGraphModel, TaskGraphModel]:
    spec = _make_spec(family, router=kind, heads=heads, **model)
    torch.manual_seed(0)
    fused = TaskGraphModel(spec)
    _perturb(fused)
    torch.manual_seed(0)
    layerwise = TaskGraphModel(spec)
    layerwise.load_state_dict(fused.state_dict())
    layerwise.fuse_layers = False
    return fused, layerwise


INPUT_IDS = torch.randint(3, 100, (6, 7), generator=torch.Generator().manual_seed(1))
MASK = (torch.arange(7)[None] < torch.tensor([7, 3, 5, 7, 2, 6])[:, None]).long()
TASKS = torch.tensor([2, 0, 2, 1, 0, 2])
LABELS = torch.tensor([4, 1, 0, 2, 0, 3])


def _step(model: TaskGraphModel, train: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    model.train(train)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(7)  # the same routing noise and dropout in both models
    out = model(INPUT_IDS, MASK, TASKS, LABELS)
    loss = out.loss + model.router.regularizer()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), out.logits.detach(), grads


@pytest.mark.parametrize("kind", ROUTERS.kinds())
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_fused_model_equals_layerwise_model(kind: str, train: bool):
    heads = 2 if kind in ("mhr", "private", "mhr-mu", "graph") else 1
    fused, layerwise = _models(kind, heads=heads)
    assert len(fused.fused.groups()) == 1  # query and value: one shape, one group
    loss_f, logits_f, grads_f = _step(fused, train)
    loss_l, logits_l, grads_l = _step(layerwise, train)
    assert_close(loss_f, loss_l, rtol=1e-6, atol=1e-6)
    assert_close(logits_f, logits_l, rtol=1e-5, atol=1e-6)
    assert grads_f.keys() == grads_l.keys() and any(".A" in n for n in grads_f)
    for name in grads_f:
        assert_close(grads_f[name], grads_l[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "family,targets,linearized",
    [
        ("gpt2", ["c_attn", "c_proj"], False),  # Conv1D, three shapes interleaved: groups with gathered columns
        ("bert", ["query", "value", r"re:.*intermediate\.dense"], True),  # L-LoRA, two shapes
    ],
)
def test_fused_equals_layerwise_with_several_shapes(family: str, targets: list[str], linearized: bool):
    spec = _make_spec(family, router="mhr", heads=2, target_modules=targets)
    spec = spec.model_copy(update={"adapters": spec.adapters.model_copy(update={"linearized": linearized})})
    torch.manual_seed(0)
    fused = TaskGraphModel(spec)
    _perturb(fused)
    layerwise = TaskGraphModel(spec)
    layerwise.load_state_dict(fused.state_dict())
    layerwise.fuse_layers = False
    groups = fused.fused.groups()
    assert len(groups) == (3 if family == "gpt2" else 2)  # gpt2: c_attn, attn.c_proj, mlp.c_proj
    assert any(g.start is None for g in groups)  # interleaved shapes: some columns are gathered
    for train in (True, False):
        loss_f, logits_f, grads_f = _step(fused, train)
        loss_l, logits_l, grads_l = _step(layerwise, train)
        assert_close(logits_f, logits_l, rtol=1e-5, atol=1e-6)
        for name in grads_f:
            assert_close(grads_f[name], grads_l[name], rtol=1e-5, atol=1e-6, msg=name)


def test_fused_inference_skips_closed_gates_like_the_layerwise_path():
    fused, _ = _models("poly")
    fused.eval()
    layers = [layer for _, layer in fused.adapted]
    tasks, inverse = distinct_tasks(TASKS)
    with torch.no_grad():
        routing = fused.router(tasks)
    gates = routing.gates.clone()
    gates[0, 1] = 0.0  # task 0 closed at layer 1, task 2 at layer 3: some rows of those layers are skipped
    gates[2, 3] = 0.0
    closed = Routing(gates, routing.weights)
    outputs = []
    for factors in (FusedFactors(layers)(closed, inverse), None):
        batch = BatchRouting(closed, inverse, factors)
        with torch.no_grad(), fused.context.use(batch):
            outputs.append(fused.base(input_ids=INPUT_IDS, attention_mask=MASK).last_hidden_state)
        assert batch.open_rows(0) is None and batch.open_rows(1).tolist() == [0, 2, 3, 5]
    assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    with torch.no_grad(), fused.context.use(BatchRouting(routing, inverse)):
        open_ = fused.base(input_ids=INPUT_IDS, attention_mask=MASK).last_hidden_state
    assert (open_ - outputs[0]).abs().max() > 1e-3  # closing the gates changed the examples they hold


def test_groups_follow_an_inventory_that_grows():
    fused, _ = _models("poly")
    before, skills = fused.fused.groups(), fused.skills
    assert fused.fused.groups() is before  # cached while nothing changes
    fused.add_task_to_learn("delta", 2, own_skill=True)
    after = fused.fused.groups()
    assert after is not before and after[0].layers[0].A.shape[1] == skills + 1
    assert group_layers([layer for _, layer in fused.adapted])[0].columns == tuple(range(fused.num_layers))
    out = fused(INPUT_IDS, MASK, ["delta", "alpha", "delta", "beta", "alpha", "gamma"])
    assert out.logits.shape == (6, 5)
