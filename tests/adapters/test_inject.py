"""inject_adapters into tiny BERT, GPT-2, T5-encoder and Llama models built from configs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from taskgraph.adapters import (
    BatchRouting,
    RoutedLoRALinear,
    RoutingContext,
    adapter_parameters,
    distinct_tasks,
    inject_adapters,
    routed_layers,
)
from taskgraph.errors import ModelError
from taskgraph.routing import MHRRouter
from taskgraph.spec.models import AdaptersSpec, RouterSpec
from tests.adapters.tiny_models import FAMILIES

TASK_IDS = torch.tensor([2, 0, 2, 1])
INPUT_IDS = torch.randint(0, 100, (4, 7), generator=torch.Generator().manual_seed(0))


def build(family: str, heads: int = 2, skills: int = 3, targets: list[str] | None = None):
    torch.manual_seed(0)
    make, default_targets = FAMILIES[family]
    model = make()
    base = copy.deepcopy(model).requires_grad_(False)  # frozen too: SDPA picks another kernel when grads are on
    context = RoutingContext()
    spec = AdaptersSpec(rank=2, alpha=4.0, heads=heads, skills=skills)
    layers = inject_adapters(model, targets or default_targets, spec, skills, context)
    return model, base, context, layers


def route(
    model: nn.Module, context: RoutingContext, router: nn.Module, task_ids: torch.Tensor, input_ids: torch.Tensor
) -> torch.Tensor:
    tasks, inverse = distinct_tasks(task_ids)
    with context.use(BatchRouting(router(tasks), inverse)):
        return model(input_ids=input_ids).last_hidden_state


def train_all_b(layers: list[tuple[str, RoutedLoRALinear]]) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, layer in layers:
            layer.B.copy_(0.5 * torch.randn(layer.B.shape, generator=g))


EXPECTED = {
    "bert": [
        "encoder.layer.0.attention.self.query",
        "encoder.layer.0.attention.self.value",
        "encoder.layer.1.attention.self.query",
        "encoder.layer.1.attention.self.value",
    ],
    "gpt2": ["h.0.attn.c_attn", "h.1.attn.c_attn"],
    "t5": [
        "encoder.block.0.layer.0.SelfAttention.q",
        "encoder.block.0.layer.0.SelfAttention.v",
        "encoder.block.1.layer.0.SelfAttention.q",
        "encoder.block.1.layer.0.SelfAttention.v",
    ],
    "llama": [
        "layers.0.self_attn.q_proj",
        "layers.0.self_attn.v_proj",
        "layers.1.self_attn.q_proj",
        "layers.1.self_attn.v_proj",
    ],
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_untrained_model_equals_base_exactly_and_base_is_frozen(family):
    model, base, context, layers = build(family)
    assert [name for name, _ in layers] == EXPECTED[family]
    assert [layer.index for _, layer in layers] == list(range(len(layers)))
    assert routed_layers(model) == layers
    assert all(model.get_submodule(name) is layer for name, layer in layers)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [f"{name}.{p}" for name, _ in layers for p in ("A", "B")]
    assert adapter_parameters(model) == [p for _, layer in layers for p in (layer.A, layer.B)]
    router = MHRRouter(3, len(layers), 2, 3, RouterSpec(kind="mhr"))
    with torch.no_grad():
        router.logits.normal_()
    for mode in ("train", "eval"):
        getattr(model, mode)(), getattr(base, mode)()
        out = route(model, context, router, TASK_IDS, INPUT_IDS)
        assert torch.equal(out, base(input_ids=INPUT_IDS).last_hidden_state)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_mixed_task_batch_equals_per_task_batches(family):
    model, _, context, layers = build(family)
    train_all_b(layers)
    router = MHRRouter(3, len(layers), 2, 3, RouterSpec(kind="mhr")).eval()
    with torch.no_grad():
        router.logits.normal_()
    model.eval()
    mixed = route(model, context, router, TASK_IDS, INPUT_IDS)
    assert (mixed - route(model, context, router, torch.zeros(4, dtype=torch.long), INPUT_IDS)).abs().max() > 1e-3
    for i in range(4):
        alone = route(model, context, router, TASK_IDS[i : i + 1], INPUT_IDS[i : i + 1])
        assert_close(mixed[i : i + 1], alone, atol=1e-5, rtol=1e-5)


def test_gradients_reach_inventory_and_router_through_the_model():
    model, _, context, layers = build("gpt2", heads=4)
    train_all_b(layers)
    router = MHRRouter(3, len(layers), 4, 3, RouterSpec(kind="mhr"))
    model.train()
    route(model, context, router, TASK_IDS, INPUT_IDS).pow(2).mean().backward()
    for _, layer in layers:
        assert layer.A.grad.abs().sum() > 0 and layer.B.grad.abs().sum() > 0
    assert router.logits.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if not n.endswith((".A", ".B")))


def test_regex_targets_match_the_full_name():
    _, _, _, layers = build("bert", targets=[r"re:encoder\.layer\.1\..*\.(query|value)"])
    assert [n for n, _ in layers] == EXPECTED["bert"][2:]
    _, _, _, layers = build("bert", targets=["value", r"re:.*layer\.0.*query"])
    assert [n for n, _ in layers] == EXPECTED["bert"][:2] + EXPECTED["bert"][3:]  # module order


def test_no_matching_target_lists_the_models_linear_names():
    with pytest.raises(ModelError, match=r"matches target_modules \['q_proj'\].*'query'.*'value'"):
        build("bert", targets=["q_proj"])
    with pytest.raises(ModelError, match="not a valid regular expression"):
        build("bert", targets=["re:query("])


def test_heads_not_dividing_a_module_is_an_error_naming_it():
    with pytest.raises(ModelError, match=r"'layers.0.self_attn.v_proj'.*heads=32.*d_in=32, d_out=16"):
        build("llama", heads=32)


def test_injecting_twice_is_an_error():
    model, _, context, _ = build("bert")
    with pytest.raises(ModelError, match="already has routed adapters"):
        inject_adapters(model, ["query"], AdaptersSpec(rank=2), 3, context)


def test_every_layer_shares_the_one_context():
    model, _, context, layers = build("t5")
    assert all(layer.context is context for _, layer in layers)
    with pytest.raises(ModelError, match="no routing set"):
        model(input_ids=INPUT_IDS)
