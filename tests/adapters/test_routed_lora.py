"""RoutedLoRALinear on a single nn.Linear / GPT-2 Conv1D, driven directly through a RoutingContext."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close
from torch.utils._python_dispatch import TorchDispatchMode
from transformers.pytorch_utils import Conv1D

from taskgraph.adapters import BatchRouting, RoutedLoRALinear, RoutingContext, distinct_tasks
from taskgraph.adapters.mixing import mix_inventory_a, mix_inventory_b
from taskgraph.errors import ModelError
from taskgraph.routing import MHRRouter, PolyRouter, PrivateRouter
from taskgraph.routing.base import Routing
from taskgraph.spec.models import RouterSpec

D_IN, D_OUT, RANK, ALPHA = 8, 12, 2, 6.0


def make_layer(
    base: nn.Module | None = None,
    *,
    heads: int = 1,
    skills: int = 3,
    linearized: bool = False,
    dropout: float = 0.0,
    index: int = 0,
) -> RoutedLoRALinear:
    torch.manual_seed(0)
    base = nn.Linear(D_IN, D_OUT) if base is None else base
    return RoutedLoRALinear(
        base,
        index,
        rank=RANK,
        alpha=ALPHA,
        heads=heads,
        skills=skills,
        dropout=dropout,
        context=RoutingContext(),
        linearized=linearized,
        name="enc.query",
    )


def train_b(layer: RoutedLoRALinear, seed: int = 1) -> None:
    """Stand-in for training: give B (and A) values away from their initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.B.copy_(torch.randn(layer.B.shape, generator=g))
        layer.A.add_(0.1 * torch.randn(layer.A.shape, generator=g).to(layer.A.device))


def random_routing(u: int, layers: int, heads: int, skills: int, seed: int = 2) -> Routing:
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(u, layers, heads, skills, generator=g)
    return Routing(torch.ones(u, layers), w / w.sum(-1, keepdim=True))


def run(layer: RoutedLoRALinear, x: torch.Tensor, routing: Routing, inverse: torch.Tensor) -> torch.Tensor:
    with layer.context.use(BatchRouting(routing, inverse)):
        return layer(x)


def plain_lora(base: nn.Module, x: torch.Tensor, a_t: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """``W x + b + s · x A_tᵀ B_tᵀ`` with PEFT-oriented factors ``A_t [r, d_in]``, ``B_t [d_out, r]``."""
    return base(x) + (ALPHA / RANK) * (x @ a_t.T) @ b_t.T


X = torch.randn(4, 5, D_IN, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("base", [nn.Linear(D_IN, D_OUT), Conv1D(D_OUT, D_IN)], ids=["linear", "conv1d"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_untrained_layer_equals_base_exactly(base, mode):
    layer = make_layer(base, heads=2)
    getattr(layer, mode)()
    assert torch.equal(layer.B, torch.zeros_like(layer.B))
    out = run(layer, X, random_routing(2, 1, 2, 3), torch.tensor([0, 1, 1, 0]))
    assert torch.equal(out, base(X))


def test_parameters_shapes_init_and_frozen_base():
    layer = make_layer(heads=2, skills=3)
    assert layer.A.shape == (2, 3, D_IN // 2, RANK) and layer.B.shape == (2, 3, RANK, D_OUT // 2)
    assert layer.A.abs().max() <= D_IN**-0.5 and layer.A.std() > 0.1 * D_IN**-0.5
    assert layer.scaling == ALPHA / RANK
    assert not any(p.requires_grad for p in layer.base.parameters())
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["A", "B"]
    assert torch.equal(make_layer(heads=2).A, layer.A)  # seeded by the global RNG


def test_conv1d_dims_come_from_its_transposed_weight():
    layer = make_layer(Conv1D(D_OUT, D_IN))
    assert (layer.in_features, layer.out_features) == (D_IN, D_OUT) and layer.fan_in_fan_out


def test_one_skill_equals_a_plain_lora():
    layer = make_layer(skills=1)
    train_b(layer)
    out = run(layer, X, Routing(torch.ones(1, 1), torch.ones(1, 1, 1, 1)), torch.zeros(4, dtype=torch.long))
    assert_close(out, plain_lora(layer.base, X, layer.A[0, 0].T, layer.B[0, 0].T))


@pytest.mark.parametrize("heads", [1, 4])
def test_mixed_task_batch_equals_per_task_batches(heads):
    layer = make_layer(heads=heads, skills=3)
    train_b(layer)
    routing = random_routing(3, 1, heads, 3)
    inverse = torch.tensor([2, 0, 1, 2])
    mixed = run(layer, X, routing, inverse)
    for i, u in enumerate(inverse.tolist()):
        alone = run(layer, X[i : i + 1], routing.for_tasks(torch.tensor([u])), torch.zeros(1, dtype=torch.long))
        assert_close(mixed[i : i + 1], alone)


def test_layer_reads_its_own_column_of_the_routing():
    layer = make_layer(index=1)
    train_b(layer)
    routing = random_routing(1, 3, 1, 3)
    only_l1 = Routing(torch.ones(1, 1), routing.weights[:, 1:2])
    inverse = torch.zeros(4, dtype=torch.long)
    other = make_layer(index=0)
    other.load_state_dict(layer.state_dict())
    assert_close(run(layer, X, routing, inverse), run(other, X, only_l1, inverse))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_closed_gate_is_exactly_the_base(mode):
    layer = make_layer(heads=2)
    train_b(layer)
    getattr(layer, mode)()
    routing = random_routing(2, 1, 2, 3)
    routing.gates = torch.tensor([[0.0], [1.0]])
    inverse = torch.tensor([0, 1, 0, 1])
    out = run(layer, X, routing, inverse)
    base = layer.base(X)
    assert torch.equal(out[[0, 2]], base[[0, 2]])
    assert (out[[1, 3]] - base[[1, 3]]).abs().max() > 1e-3


def test_inference_skip_equals_multiplying_by_the_gate():
    layer = make_layer(heads=2)
    train_b(layer)
    routing = random_routing(3, 1, 2, 3)
    routing.gates = torch.tensor([[1.0], [0.0], [0.5]])
    inverse = torch.tensor([0, 1, 2, 1])
    trained = run(layer.train(), X, routing, inverse)  # training path: every example computed, gate multiplies
    skipped = run(layer.eval(), X, routing, inverse)  # inference path: example 1 and 3 not computed
    assert_close(skipped, trained)
    routing.gates = torch.ones(3, 1)
    with OpRecorder() as open_ops:
        run(layer.eval(), X, routing, inverse)
    routing.gates = torch.zeros(3, 1)
    with OpRecorder() as closed_ops:
        out = run(layer.eval(), X, routing, inverse)
    assert torch.equal(out, layer.base(X))
    # every example closed: the two per-example products (x A_u, then · B_u) are not run at all
    assert closed_ops.names.count("bmm") == open_ops.names.count("bmm") - 2


@pytest.mark.parametrize(
    "kind,heads,linearized",
    [("poly", 1, False), ("mhr", 4, False), ("private", 2, False), ("poly", 1, True), ("mhr", 2, True)],
)
@pytest.mark.parametrize("base_kind", ["linear", "conv1d"])
def test_fold_and_merged_weight_equal_routed(kind, heads, linearized, base_kind):
    base = nn.Linear(D_IN, D_OUT) if base_kind == "linear" else Conv1D(D_OUT, D_IN)
    router_cls = {"poly": PolyRouter, "mhr": MHRRouter, "private": PrivateRouter}[kind]
    skills = router_cls.inventory_size(3, 3)
    layer = make_layer(base, heads=heads, skills=skills, linearized=linearized).eval()
    if linearized:  # linearise around B0 != 0: the fold is then exactly rank 2r
        with torch.no_grad():
            layer.B0.normal_(generator=torch.Generator().manual_seed(9))
    train_b(layer)
    router = router_cls(3, 1, heads, skills, RouterSpec(kind=kind)).eval()
    for task in range(3):
        routing = router(torch.tensor([task]))
        routed = run(layer, X, routing, torch.zeros(4, dtype=torch.long))
        a_t, b_t = layer.fold(routing.weights[0, 0], float(routing.gates[0, 0]))
        assert a_t.shape[0] == (2 * RANK if linearized else RANK)
        assert_close(plain_lora(layer.base, X, a_t, b_t), routed)
        assert_close(layer.merged_base(routing.weights[0, 0], 1.0)(X), routed, atol=1e-5, rtol=1e-5)
        w = layer.delta_weight(routing.weights[0, 0], 1.0)  # [d_out, d_in]
        assert_close(layer.base(X) + X @ w.T, routed, atol=1e-5, rtol=1e-5)


def test_fold_of_a_closed_gate_is_none_and_gate_is_folded_into_b():
    layer = make_layer()
    train_b(layer)
    w = torch.tensor([[0.2, 0.3, 0.5]])
    assert layer.fold(w, 0.0) is None
    assert torch.equal(layer.delta_weight(w, 0.0), torch.zeros(D_OUT, D_IN))
    a_full, b_full = layer.fold(w, 1.0)
    a_half, b_half = layer.fold(w, 0.5)
    assert torch.equal(a_full, a_half)
    assert_close(b_half, 0.5 * b_full)


def test_linearized_with_b0_zero_trains_b_around_a_frozen_a0():
    layer = make_layer(linearized=True, heads=2)
    assert torch.equal(layer.A0, layer.A) and torch.equal(layer.B0, torch.zeros_like(layer.B))
    assert {n for n, _ in layer.named_buffers()} == {"A0", "B0"}
    routing, inverse = random_routing(2, 1, 2, 3), torch.tensor([0, 1, 1, 0])
    assert torch.equal(run(layer, X, routing, inverse), layer.base(X))  # untrained == base
    train_b(layer)
    out = run(layer, X, routing, inverse)
    w = routing.weights[:, 0]
    a0, b = mix_inventory_a(w, layer.A0), mix_inventory_b(w, layer.B)
    expected = layer.base(X) + layer.scaling * torch.stack([X[i] @ a0[u] @ b[u] for i, u in enumerate(inverse)])
    assert_close(out, expected)  # x A0 B: A has no effect while B0 = 0
    out.sum().backward()
    assert torch.equal(layer.A.grad, torch.zeros_like(layer.A)) and layer.B.grad.abs().sum() > 0
    a_t, b_t = layer.fold(w[0], 1.0)
    assert a_t.shape == (RANK, D_IN)  # B0 = 0 folds to rank r


def test_linearized_equals_jvp_of_the_lora_product():
    layer = make_layer(linearized=True, heads=2)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # a linearisation point with B0 != 0, then a move away from it
        layer.B0.copy_(torch.randn(layer.B0.shape, generator=g))
        layer.B.copy_(layer.B0 + 0.3 * torch.randn(layer.B.shape, generator=g))
        layer.A.add_(0.3 * torch.randn(layer.A.shape, generator=g))
    routing, inverse = random_routing(2, 1, 2, 3), torch.tensor([0, 1, 1, 0])
    w = routing.weights[:, 0]
    per_example = w.index_select(0, inverse)

    def delta(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        a, b = mix_inventory_a(per_example, A), mix_inventory_b(per_example, B)
        return layer.scaling * torch.bmm(torch.bmm(X, a), b)

    primal, tangent = torch.func.jvp(delta, (layer.A0, layer.B0), (layer.A - layer.A0, layer.B - layer.B0))
    out = run(layer, X, routing, inverse)
    assert_close(out, layer.base(X) + primal + tangent, atol=1e-5, rtol=1e-4)
    a_t, b_t = layer.fold(w[1], 1.0)
    assert a_t.shape == (2 * RANK, D_IN)  # B0 != 0 folds to rank 2r, exactly
    assert_close(plain_lora(layer.base, X[[1, 2]], a_t, b_t), out[[1, 2]], atol=1e-5, rtol=1e-4)


def test_gradients_reach_inventory_and_router_logits():
    layer = make_layer(heads=2, skills=3)
    train_b(layer)
    router = MHRRouter(4, 1, 2, 3, RouterSpec(kind="mhr"))
    task_ids = torch.tensor([3, 1, 3, 0])
    tasks, inverse = distinct_tasks(task_ids)
    assert tasks.tolist() == [0, 1, 3] and torch.equal(tasks[inverse], task_ids)
    out = run(layer, X, router(tasks), inverse)
    out.pow(2).sum().backward()
    assert layer.A.grad.abs().sum() > 0 and layer.B.grad.abs().sum() > 0
    assert router.logits.grad[[0, 1, 3]].abs().sum() > 0 and router.logits.grad[2].abs().sum() == 0
    assert all(p.grad is None for p in layer.base.parameters())


def test_private_index_selects_only_the_tasks_skills():
    num_tasks = 50
    layer = make_layer(skills=num_tasks)
    train_b(layer)
    router = PrivateRouter(num_tasks, 1, 1, num_tasks, RouterSpec(kind="private"))
    tasks, inverse = torch.tensor([7, 42]), torch.tensor([0, 1, 1, 0])
    out = run(layer, X, router(tasks), inverse)
    for i, t in enumerate([7, 42, 42, 7]):
        assert_close(out[i], plain_lora(layer.base, X[i], layer.A[0, t].T, layer.B[0, t].T))
    out.sum().backward()
    touched = layer.B.grad.abs().sum(dim=(0, 2, 3)).nonzero().flatten().tolist()
    assert touched == [7, 42]


def test_dropout_only_in_training():
    layer = make_layer(dropout=0.5)
    train_b(layer)
    routing, inverse = random_routing(1, 1, 1, 3), torch.zeros(4, dtype=torch.long)
    torch.manual_seed(0)
    first, second = run(layer, X, routing, inverse), run(layer, X, routing, inverse)
    assert not torch.allclose(first, second)
    layer.eval()
    assert torch.equal(run(layer, X, routing, inverse), run(layer, X, routing, inverse))


def test_heads_must_divide_both_dims():
    with pytest.raises(ModelError, match=r"'enc.query'.*heads=3.*d_in=8, d_out=12"):
        make_layer(heads=3)
    with pytest.raises(ModelError, match="d_out=12"):
        make_layer(heads=8)


def test_calling_without_routing_or_with_the_wrong_batch_is_a_clear_error():
    layer = make_layer()
    with pytest.raises(ModelError, match="no routing set: call the model through TaskGraphModel"):
        layer(X)
    with pytest.raises(ModelError, match="covers 3 examples"):
        run(layer, X, random_routing(1, 1, 1, 3), torch.zeros(3, dtype=torch.long))


def test_context_restores_the_previous_routing():
    ctx = RoutingContext()
    outer = BatchRouting(random_routing(1, 1, 1, 3), torch.zeros(2, dtype=torch.long))
    inner = BatchRouting(random_routing(2, 1, 1, 3), torch.zeros(2, dtype=torch.long))
    with ctx.use(outer):
        with ctx.use(inner):
            assert ctx.current is inner
        assert ctx.current is outer
        with pytest.raises(RuntimeError), ctx.use(inner):
            raise RuntimeError
        assert ctx.current is outer
    assert ctx.current is None
    assert "tasks=1, examples=2" in repr(outer)


class OpRecorder(TorchDispatchMode):
    """Records the name of every aten op that runs (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


HOST_SYNC_OPS = {
    "_local_scalar_dense",
    "nonzero",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "masked_select",
    "is_nonzero",
    "equal",
}


@pytest.mark.parametrize("kind", ["mhr", "private"])
def test_training_forward_and_backward_never_sync_with_the_host(kind):
    layer = make_layer(heads=2, skills=4 if kind == "mhr" else 3, dropout=0.1)
    train_b(layer)
    router = (
        MHRRouter(3, 1, 2, 4, RouterSpec(kind="mhr"))
        if kind == "mhr"
        else PrivateRouter(3, 1, 2, 3, RouterSpec(kind="private"))
    )
    routing, inverse = router(torch.tensor([0, 2])), torch.tensor([1, 0, 0, 1])
    with OpRecorder() as ops:
        run(layer, X, routing, inverse).sum().backward()
    assert "bmm" in ops.names and not HOST_SYNC_OPS & set(ops.names)
    with OpRecorder() as ops:  # the recorder does see a sync: the inference path copies the gates to the host
        run(layer.eval(), X, routing, inverse)
    assert "_to_copy" in ops.names


def test_bfloat16_base_gives_bfloat16_parameters_and_outputs():
    layer = make_layer(nn.Linear(D_IN, D_OUT).to(torch.bfloat16), heads=2)
    assert layer.A.dtype == layer.B.dtype == torch.bfloat16
    train_b(layer)
    out = run(layer, X.to(torch.bfloat16), random_routing(1, 1, 2, 3), torch.zeros(4, dtype=torch.long))
    assert out.dtype == torch.bfloat16
    layer32 = make_layer(heads=2)
    train_b(layer32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = run(layer32, X, random_routing(1, 1, 2, 3), torch.zeros(4, dtype=torch.long))
    plain = run(layer32, X, random_routing(1, 1, 2, 3), torch.zeros(4, dtype=torch.long))
    assert_close(auto.float(), plain, atol=0.1, rtol=0.05)


def test_extra_repr_names_the_layout():
    text = repr(make_layer(heads=2, linearized=True))
    for part in ("index=0", "d_in=8", "d_out=12", "heads=2", "skills=3", "rank=2", "scaling=3", "linearized=True"):
        assert part in text


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("kind", ["mhr", "private"])
def test_cuda_training_step_never_syncs_and_runs_under_bf16_autocast(kind):
    device = torch.device("cuda")
    layer = make_layer(heads=2, skills=4 if kind == "mhr" else 3, dropout=0.1).to(device)
    train_b(layer)
    assert layer.A.device.type == "cuda" and layer.A.dtype == torch.float32
    router = (
        MHRRouter(3, 1, 2, 4, RouterSpec(kind="mhr"))
        if kind == "mhr"
        else PrivateRouter(3, 1, 2, 3, RouterSpec(kind="private"))
    ).to(device)
    tasks, inverse = distinct_tasks(torch.tensor([2, 0, 0, 2], device=device))  # once per batch, outside layers
    x = X.to(device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = run(layer, x, router(tasks), inverse)
        out.sum().backward()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            trained = run(layer, x, router(tasks), inverse)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trained.dtype == torch.bfloat16
    assert layer.B.grad.abs().sum() > 0
    layer.eval()
    router.eval()  # dropout and the relaxed-Bernoulli routing sample only in training: compare deterministic passes
    routing = router(tasks)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        auto = run(layer, x, routing, inverse)
    assert auto.dtype == torch.bfloat16
    assert_close(auto.float(), run(layer, x, routing, inverse), atol=0.1, rtol=0.05)
    cpu = make_layer(heads=2, skills=layer.skills)
    cpu.load_state_dict({k: v.cpu() for k, v in layer.state_dict().items()})
    routing_cpu = Routing(
        routing.gates.cpu(), routing.weights.cpu(), None if routing.choice is None else routing.choice.cpu()
    )
    assert_close(
        run(layer, x, routing, inverse).cpu(), run(cpu.eval(), X, routing_cpu, inverse.cpu()), atol=1e-4, rtol=1e-4
    )
