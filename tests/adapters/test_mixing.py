"""The pure mixing functions, against explicit loops."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from taskgraph.adapters.mixing import (
    add_open_delta,
    gather_rows,
    linearized_factors,
    lora_delta,
    mix_inventory_a,
    mix_inventory_b,
    select_skill_a,
    select_skill_b,
)

U, H, K, D_IN, D_OUT, R = 3, 2, 4, 6, 8, 2


def inventory(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(H, K, D_IN // H, R, generator=g)
    B = torch.randn(H, K, R, D_OUT // H, generator=g)
    w = torch.rand(U, H, K, generator=g)
    return A, B, w / w.sum(-1, keepdim=True)


def test_mix_concatenates_heads_along_d_in_for_a_and_d_out_for_b():
    A, B, w = inventory()
    a, b = mix_inventory_a(w, A), mix_inventory_b(w, B)
    assert a.shape == (U, D_IN, R) and b.shape == (U, R, D_OUT)
    for u in range(U):
        a_u = torch.cat([sum(w[u, h, k] * A[h, k] for k in range(K)) for h in range(H)], dim=0)
        b_u = torch.cat([sum(w[u, h, k] * B[h, k] for k in range(K)) for h in range(H)], dim=1)
        assert_close(a[u], a_u)
        assert_close(b[u], b_u)


def test_select_equals_mixing_one_hot_weights_exactly():
    A, B, _ = inventory()
    choice = torch.tensor([[0, 3], [2, 2], [1, 0]])  # [U, H]
    one_hot = torch.nn.functional.one_hot(choice, K).float()  # [U, H, K]
    assert torch.equal(select_skill_a(choice, A), mix_inventory_a(one_hot, A))
    assert torch.equal(select_skill_b(choice, B), mix_inventory_b(one_hot, B))


def test_lora_delta_gathers_per_example():
    A, B, w = inventory()
    a, b = mix_inventory_a(w, A), mix_inventory_b(w, B)
    x = torch.randn(5, 7, D_IN)
    inverse = torch.tensor([2, 0, 0, 1, 2])
    out = lora_delta(x, a, b, inverse)
    assert out.shape == (5, 7, D_OUT)
    for i, u in enumerate(inverse.tolist()):
        assert_close(out[i], x[i] @ a[u] @ b[u])


def test_lora_delta_accepts_2d_and_4d_inputs():
    A, B, w = inventory()
    a, b = mix_inventory_a(w, A), mix_inventory_b(w, B)
    inverse = torch.tensor([1, 0])
    x2 = torch.randn(2, D_IN)
    assert_close(lora_delta(x2, a, b, inverse), torch.stack([x2[0] @ a[1] @ b[1], x2[1] @ a[0] @ b[0]]))
    x4 = torch.randn(2, 3, 4, D_IN)
    assert_close(lora_delta(x4, a, b, inverse)[1], x4[1] @ a[0] @ b[0])


def test_linearized_factors_are_the_first_order_expansion():
    A, B, w = inventory(0)
    A0, B0, _ = inventory(1)
    a, b, a0, b0 = (mix_inventory_a(w, A), mix_inventory_b(w, B), mix_inventory_a(w, A0), mix_inventory_b(w, B0))
    a_lin, b_lin = linearized_factors(a, b, a0, b0)
    assert a_lin.shape == (U, D_IN, 2 * R) and b_lin.shape == (U, 2 * R, D_OUT)
    assert_close(a_lin @ b_lin, a @ b0 + a0 @ b - a0 @ b0)


def test_add_open_delta_equals_multiplying_closed_examples_by_zero():
    A, B, w = inventory()
    a, b = mix_inventory_a(w, A), mix_inventory_b(w, B)
    x, y = torch.randn(6, 4, D_IN), torch.randn(6, 4, D_OUT)
    inverse = torch.tensor([0, 1, 2, 1, 0, 2])
    gate = torch.tensor([1.0, 0.0, 0.5])
    gated_b = b * gate[:, None, None]
    expected = y + lora_delta(x, a, gated_b, inverse)
    out = add_open_delta(y, x, a, gated_b, inverse, gate)
    assert_close(out, expected)
    assert torch.equal(out[[1, 3]], y[[1, 3]])  # closed rows are the base output, bit for bit
    assert add_open_delta(y, x, a, gated_b * 0, inverse, torch.zeros(3)) is y  # all closed: y itself
    assert_close(add_open_delta(y, x, a, b, inverse, torch.ones(3)), y + lora_delta(x, a, b, inverse))


def test_gather_rows_equals_index_select_exactly_and_backpropagates_the_same():
    t = torch.randn(4, 3, 5, requires_grad=True)
    inverse = torch.tensor([3, 0, 0, 2, 3, 3])
    out = gather_rows(t, inverse)
    assert torch.equal(out, t.index_select(0, inverse))
    g = torch.randn(6, 3, 5)
    (grad,) = torch.autograd.grad(out, t, g)
    (expected,) = torch.autograd.grad(t.index_select(0, inverse), t, g)
    assert_close(grad, expected)
    assert torch.equal(grad[1], torch.zeros(3, 5))  # a task with no example gets no gradient
