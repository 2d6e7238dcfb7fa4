"""Routers + routed layers in whole models, against PEFT LoRA models with copied weights.

Poly with K = 1 is one LoRA; MHR with H = 1 is Poly; private is T separate LoRAs; mhr-mu is the
uniform mix; a folded task equals the routed model; merged weights equal the routed model; closed
gates are the base model.
"""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from torch.testing import assert_close

from taskgraph.adapters import BatchRouting, RoutedLoRALinear, RoutingContext, distinct_tasks, inject_adapters
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Routing
from taskgraph.spec.models import AdaptersSpec, RouterSpec
from tests.adapters.tiny_models import FAMILIES as ALL_FAMILIES

RANK, ALPHA, T = 2, 4.0, 3
FAMILIES = {k: ALL_FAMILIES[k] for k in ("bert", "gpt2")}
TASK_IDS = torch.tensor([2, 0, 1, 2, 0])
INPUT_IDS = torch.randint(0, 100, (5, 6), generator=torch.Generator().manual_seed(0))


class Routed:
    """A tiny transformer with routed adapters and its router, called like TaskGraphModel will call it."""

    def __init__(self, family: str, kind: str, heads: int = 1, skills: int = 3, seed: int = 0) -> None:
        torch.manual_seed(seed)
        make, self.targets = FAMILIES[family]
        self.family = family
        self.model = make()
        self.base = copy.deepcopy(self.model).requires_grad_(False)
        router_cls = ROUTERS.get(kind).obj
        k = router_cls.inventory_size(skills, T)
        self.context = RoutingContext()
        spec = AdaptersSpec(rank=RANK, alpha=ALPHA, heads=heads, skills=k)
        self.layers = inject_adapters(self.model, self.targets, spec, k, self.context)
        self.router = router_cls(T, len(self.layers), heads, k, RouterSpec(kind=kind))
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():  # stand-in for training
            for _, layer in self.layers:
                layer.B.copy_(0.5 * torch.randn(layer.B.shape, generator=g))
            for p in self.router.parameters():
                p.normal_(generator=g)

    def train(self, mode: bool = True) -> Routed:
        self.model.train(mode), self.router.train(mode)
        return self

    def __call__(self, task_ids: torch.Tensor, input_ids: torch.Tensor, routing: Routing | None = None):
        tasks, inverse = distinct_tasks(task_ids)
        routing = self.router(tasks) if routing is None else routing
        with self.context.use(BatchRouting(routing, inverse)):
            return self.model(input_ids=input_ids).last_hidden_state


def peft_model(routed: Routed, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    """A PEFT LoRA on a copy of the base, with ``lora_A [r, d_in]`` / ``lora_B [d_out, r]`` set per module."""
    config = LoraConfig(
        r=RANK,
        lora_alpha=ALPHA,
        target_modules=routed.targets,
        lora_dropout=0.0,
        fan_in_fan_out=routed.family == "gpt2",
    )
    model = get_peft_model(copy.deepcopy(routed.base), config).eval()
    with torch.no_grad():
        for name, (a_t, b_t) in factors.items():
            module = model.base_model.model.get_submodule(name)
            module.lora_A["default"].weight.copy_(a_t)
            module.lora_B["default"].weight.copy_(b_t)
    return model


def explicit(layer: RoutedLoRALinear, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A_t = concat_h Σ_k w[h,k] A[h,k]`` written out with loops, transposed to PEFT's orientation."""
    heads, skills = weights.shape
    a = torch.cat([sum(weights[h, k] * layer.A[h, k] for k in range(skills)) for h in range(heads)], dim=0)
    b = torch.cat([sum(weights[h, k] * layer.B[h, k] for k in range(skills)) for h in range(heads)], dim=1)
    return a.T.detach(), b.T.detach()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_poly_with_one_skill_equals_one_peft_lora(family):
    routed = Routed(family, "poly", skills=1)
    assert all(layer.skills == 1 for _, layer in routed.layers)
    peft = peft_model(routed, {n: (l.A[0, 0].T, l.B[0, 0].T) for n, l in routed.layers})
    expected = peft(input_ids=INPUT_IDS).last_hidden_state
    assert (expected - routed.base(input_ids=INPUT_IDS).last_hidden_state).abs().max() > 1e-2
    assert_close(routed.train(False)(TASK_IDS, INPUT_IDS), expected)
    assert_close(routed.train(True)(TASK_IDS, INPUT_IDS), expected, atol=1e-5, rtol=1e-5)  # sampled z / Σz = 1


def test_mhr_with_one_head_equals_poly_in_training_and_inference():
    poly, mhr = Routed("bert", "poly", skills=4), Routed("bert", "mhr", heads=1, skills=4)
    assert torch.equal(poly.router.logits, mhr.router.logits)
    for mode in (True, False):
        torch.manual_seed(5)
        a = poly.train(mode)(TASK_IDS, INPUT_IDS)
        torch.manual_seed(5)
        b = mhr.train(mode)(TASK_IDS, INPUT_IDS)
        assert torch.equal(a, b)


@pytest.mark.parametrize("family,heads", [("bert", 2), ("gpt2", 4)])
def test_private_equals_separate_loras(family, heads):
    routed = Routed(family, "private", heads=heads)
    assert all(layer.skills == T for _, layer in routed.layers)
    out = routed.train(False)(TASK_IDS, INPUT_IDS)
    for t in range(T):
        one_hot = torch.nn.functional.one_hot(torch.full((heads,), t), T).float()  # [H, T]
        peft = peft_model(routed, {n: explicit(l, one_hot) for n, l in routed.layers})
        rows = (TASK_IDS == t).nonzero().flatten()
        assert_close(out[rows], peft(input_ids=INPUT_IDS[rows]).last_hidden_state)


def test_mhr_mu_equals_the_uniform_mix_for_every_task():
    routed = Routed("bert", "mhr-mu", heads=2, skills=3)
    uniform = torch.full((2, 3), 1 / 3)
    peft = peft_model(routed, {n: explicit(l, uniform) for n, l in routed.layers})
    for mode in (True, False):
        assert_close(routed.train(mode)(TASK_IDS, INPUT_IDS), peft(input_ids=INPUT_IDS).last_hidden_state)


@pytest.mark.parametrize("family,kind,heads", [("bert", "poly", 1), ("bert", "mhr", 4), ("gpt2", "mhr", 4)])
def test_folded_task_and_merged_weights_equal_routed(family, kind, heads):
    routed = Routed(family, kind, heads=heads, skills=3).train(False)
    out = routed(TASK_IDS, INPUT_IDS)
    routing = routed.router(torch.arange(T))
    for t in range(T):
        rows = (TASK_IDS == t).nonzero().flatten()
        folded = {n: l.fold(routing.weights[t, l.index], float(routing.gates[t, l.index])) for n, l in routed.layers}
        assert all(a.shape == (RANK, l.in_features) for (n, l), (a, _) in zip(routed.layers, folded.values()))
        peft = peft_model(routed, folded)
        assert_close(peft(input_ids=INPUT_IDS[rows]).last_hidden_state, out[rows], atol=1e-5, rtol=1e-5)
        merged = copy.deepcopy(routed.base)
        for name, layer in routed.layers:
            parent, _, attr = name.rpartition(".")
            setattr(merged.get_submodule(parent), attr, layer.merged_base(routing.weights[t, layer.index], 1.0))
        assert_close(merged(input_ids=INPUT_IDS[rows]).last_hidden_state, out[rows], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", [True, False])
def test_closed_gates_skip_exactly_those_layers(mode):
    routed = Routed("gpt2", "mhr", heads=2).train(mode)
    torch.manual_seed(0)
    routing = routed.router(torch.arange(T))
    closed = Routing(torch.zeros_like(routing.gates), routing.weights)
    assert torch.equal(routed(TASK_IDS, INPUT_IDS, closed), routed.base(input_ids=INPUT_IDS).last_hidden_state)
    layer0_closed = Routing(torch.tensor([[0.0, 1.0]]).expand(T, 2), routing.weights)
    out = routed(TASK_IDS, INPUT_IDS, layer0_closed)
    with torch.no_grad():
        routed.layers[0][1].B.zero_()  # the same model with layer 0's adapter removed
    assert_close(out, routed(TASK_IDS, INPUT_IDS, routing))
