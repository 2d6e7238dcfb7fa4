"""Task × task cosines: hand values, conventions, and per-task gradients of a toy loss."""

from __future__ import annotations

import math

import pytest
import torch

from taskgraph.metrics import cosine_matrix, flat_gradient, gradient_cosine, routing_cosine, task_gradients


def test_cosine_matrix_by_hand():
    cos = cosine_matrix(torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 0.0], [-1.0, 0.0]]))
    assert cos.dtype == torch.float64 and torch.equal(cos, cos.T)
    assert cos.diagonal().tolist() == [1.0, 1.0, 1.0, 0.0, 1.0]  # the zero row: 0, itself included
    assert cos[0, 1] == 0.0 and cos[0, 2] == pytest.approx(1 / math.sqrt(2)) and cos[0, 4] == -1.0
    assert cos[3].tolist() == [0.0] * 5


def test_routing_cosine_uses_gates():
    w = torch.zeros(3, 2, 1, 2)  # [T, L, H, K]
    w[0, :, 0] = torch.tensor([1.0, 0.0])  # task 0: skill 0 in both layers
    w[1, 0, 0], w[1, 1, 0] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # task 1: skill 0, then 1
    w[2] = w[0]
    cos = routing_cosine(w)
    assert cos[0, 2] == pytest.approx(1.0) and cos[0, 1] == pytest.approx(0.5)
    gates = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # task 1's second layer closed
    assert routing_cosine(w, gates)[0, 1] == pytest.approx(1 / math.sqrt(2))


def test_task_gradients_of_a_toy_loss():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    unused = torch.nn.Parameter(torch.zeros(3))

    def loss_of(x: torch.Tensor) -> torch.Tensor:  # d/dw = x + w
        return (w * x).sum() + 0.5 * (w**2).sum()

    batches = [
        [torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])],  # task 0: mean gradient (2, 0) + w
        [torch.tensor([0.0, -2.0])],  # task 1: (0, -2) + w
        [torch.tensor([2.0, 0.0])],
    ]  # task 2: same as task 0
    grads = task_gradients(loss_of, [w, unused], batches)
    assert grads.tolist() == [[3.0, 2.0, 0, 0, 0], [1.0, 0.0, 0, 0, 0], [3.0, 2.0, 0, 0, 0]]
    assert w.grad is None and unused.grad is None  # .grad untouched
    cos = gradient_cosine(loss_of, [w, unused], batches)
    assert torch.equal(cos, cos.T) and cos.diagonal().tolist() == [1.0, 1.0, 1.0]
    assert cos[0, 2] == pytest.approx(1.0)  # identical tasks
    assert cos[0, 1] == pytest.approx(3 / math.sqrt(13))
    assert flat_gradient((w**2).sum(), [w]).tolist() == [2.0, 4.0]
    with pytest.raises(ValueError, match="no batch"):
        task_gradients(loss_of, [w], [[]])
    with pytest.raises(ValueError, match="no parameters"):
        task_gradients(loss_of, [], batches)
