"""fold / merge_task: a folded task equals the routed model; merged equals folded."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from taskgraph.adapters.routed_lora import RoutedLoRALinear
from taskgraph.errors import TaskgraphWarning
from taskgraph.model import FoldedLoRA, TaskGraphModel, unload
from taskgraph.model.fold import merge_and_unload
from taskgraph.model.pooling import pool
from taskgraph.routing.base import Router, Routing

CASES = [("bert", "poly", 1), ("bert", "mhr", 2), ("bert", "private", 1), ("gpt2", "mhr", 2), ("llama", "poly", 1)]


def build(spec_for, perturb, family: str, router: str, heads: int) -> TaskGraphModel:
    torch.manual_seed(0)
    model = TaskGraphModel(spec_for(family, router=router, heads=heads))
    perturb(model)
    return model.eval()


def plain_lora_logits(model: TaskGraphModel, folded: FoldedLoRA, ids: Tensor, mask: Tensor) -> Tensor:
    """Reference: the plain base with ``y = W x + s · (x Aᵀ) Bᵀ`` hooked onto each folded module."""
    base = unload(model).eval()
    for name, m in folded.modules.items():

        def hook(module: nn.Module, args: tuple[Tensor, ...], out: Tensor, m=m) -> Tensor:
            return out + m.scaling * (args[0] @ m.A.T) @ m.B.T

        base.get_submodule(name).register_forward_hook(hook)
    hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
    return pool(folded.pooling, hidden, mask) @ folded.head_weight.T + folded.head_bias


@pytest.mark.parametrize("family, router, heads", CASES)
def test_folded_equals_routed_and_merged_equals_folded(spec_for, perturb, batch, family, router, heads) -> None:
    model = build(spec_for, perturb, family, router, heads)
    ids, mask = batch(4, 7)
    for task, labels in [("alpha", 2), ("gamma", 5)]:
        routed = model(ids, mask, task).logits[:, :labels]  # [4, C]
        folded = model.fold(task)
        assert folded.task == task and len(folded.modules) == model.num_layers and not folded.dropped
        torch.testing.assert_close(plain_lora_logits(model, folded, ids, mask), routed, rtol=1e-4, atol=1e-5)
        merged = model.merge_task(task)
        assert not any(isinstance(m, RoutedLoRALinear) for m in merged.modules())
        assert type(merged.base) is type(model.base)
        torch.testing.assert_close(merged(ids, mask), routed, rtol=1e-4, atol=1e-5)
    # the routed model still serves every task afterwards
    assert any(isinstance(m, RoutedLoRALinear) for m in model.base.modules())


def test_folded_factors_are_the_mixed_inventory(spec_for, perturb) -> None:
    """A_t = concat_h Σ_k w[t,h,k] A[h,k] in PEFT orientation, for MHR with 2 heads."""
    model = build(spec_for, perturb, "bert", "mhr", 2)
    name, layer = model.adapted[1]
    with torch.no_grad():
        model.router.train(False)
        w = model.router(torch.tensor([1])).weights[0, layer.index]  # [H, K]
        a = torch.cat([sum(w[h, k] * layer.A[h, k] for k in range(3)) for h in range(2)], dim=0)  # [d_in, r]
        b = torch.cat([sum(w[h, k] * layer.B[h, k] for k in range(3)) for h in range(2)], dim=1)  # [r, d_out]
    m = model.fold("beta").modules[name]
    assert m.A.shape == (4, 32) and m.B.shape == (32, 4) and m.scaling == 2.0 and m.rank == 4
    torch.testing.assert_close(m.A, a.T)
    torch.testing.assert_close(m.B, b.T)
    torch.testing.assert_close(m.delta_weight(), 2.0 * b.T @ a.T)


def test_private_fold_is_the_task_own_skill(spec_for, perturb) -> None:
    model = build(spec_for, perturb, "bert", "private", 1)
    name, layer = model.adapted[0]
    m = model.fold("gamma").modules[name]
    assert torch.equal(m.A, layer.A[0, 2].T) and torch.equal(m.B, layer.B[0, 2].T)


class ClosingRouter(Router):
    """Wraps a router and closes the gate of layer ``closed`` for every task (a graph router could)."""

    def __init__(self, inner: Router, closed: int) -> None:
        super().__init__(inner.num_tasks, inner.num_layers, inner.heads, inner.skills)
        self.inner, self.closed = inner, closed

    def forward(self, tasks: Tensor) -> Routing:
        routing = self.inner(tasks)
        gates = routing.gates.clone()
        gates[:, self.closed] = 0.0
        return Routing(gates, routing.weights, routing.choice)


def test_closed_layer_is_dropped_and_equivalences_hold(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb, "bert", "mhr", 2)
    model.router = ClosingRouter(model.router, closed=2)
    ids, mask = batch(3, 6)
    routed = model(ids, mask, "beta").logits[:, :3]
    folded = model.fold("beta")
    assert folded.dropped == [model.adapted_names[2]]
    assert list(folded.modules) == [n for i, n in enumerate(model.adapted_names) if i != 2]
    torch.testing.assert_close(plain_lora_logits(model, folded, ids, mask), routed, rtol=1e-4, atol=1e-5)
    merged = model.merge_task("beta")
    torch.testing.assert_close(merged(ids, mask), routed, rtol=1e-4, atol=1e-5)
    name = model.adapted_names[2]
    assert torch.equal(merged.base.get_submodule(name).weight, model.base.get_submodule(name).base.weight)


def test_fold_uses_inference_routing_and_restores_mode(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb, "bert", "poly", 1).train()
    first, second = model.fold("alpha"), model.fold("alpha")  # no relaxed-Bernoulli sampling
    name = model.adapted_names[0]
    assert torch.equal(first.modules[name].A, second.modules[name].A)
    assert model.training and model.router.training
    assert not model.merge_task("alpha").training


def test_reprs(spec_for, perturb) -> None:
    model = build(spec_for, perturb, "bert", "mhr", 2)
    folded = model.fold("gamma")
    assert repr(folded) == ("FoldedLoRA(task='gamma', modules=4, dropped=0, rank=4, alpha=8, labels=5, pooling='mean')")
    assert repr(folded.modules[model.adapted_names[0]]) == "FoldedModule(A=(4, 32), B=(32, 4), scaling=2)"
    assert repr(model.merge_task("gamma")) == (
        "MergedTaskModel(task='gamma', base=BertModel, head=32->5, pooling='mean')"
    )


def test_merge_and_unload_is_the_old_name_of_merge_task_and_warns(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb, "bert", "mhr", 2)
    ids, mask = batch(4, 7)
    expected = model.merge_task("gamma")(ids, mask)  # [4, 5]
    for old in (lambda: model.merge_and_unload("gamma"), lambda: merge_and_unload(model, "gamma")):
        with pytest.warns(TaskgraphWarning, match=r"merge_and_unload\(task\) is renamed merge_task\(task\)") as seen:
            merged = old()
        assert [w.filename for w in seen] == [__file__]  # points at the caller's line, not at taskgraph's
        assert not any(isinstance(m, RoutedLoRALinear) for m in merged.modules())
        torch.testing.assert_close(merged(ids, mask), expected, rtol=0, atol=0)
    assert any(isinstance(m, RoutedLoRALinear) for m in model.base.modules())  # the routed model is kept
